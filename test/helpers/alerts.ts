/**
 * Helpers for the alerts and webhooks tests: budgets and budget_alerts rows inserted with SQL (as
 * the ingest transaction will insert them), and a local webhook receiver with a script of answers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Database } from '@tokenmeter/db';

/** Every table the notifier and the webhook admin routes touch. */
export async function resetAlertTables(db: Database): Promise<void> {
  await db.pool.query('TRUNCATE budgets, budget_windows, budget_alerts, credit_alerts, credit_alert_fundings, webhook_endpoints, webhook_deliveries, webhook_delivery_attempts RESTART IDENTITY');
}

export async function insertBudget(
  db: Database,
  b: { id: string; accountId: string; apiKeyId?: string | null; model?: string | null; limitUsd: string; window: 'day' | 'month' | 'total'; enforce?: 'hard' | 'soft' },
): Promise<void> {
  await db.pool.query(
    `INSERT INTO budgets (id, account_id, api_key_id, model, limit_usd, time_window, thresholds, enforce, counts_from)
     VALUES ($1, $2, $3, $4, $5, $6, '{50,80,100}', $7, 'epoch')`,
    [b.id, b.accountId, b.apiKeyId ?? null, b.model ?? null, b.limitUsd, b.window, b.enforce ?? 'hard'],
  );
}

/** One alert row; returns its id. */
export async function insertAlert(
  db: Database,
  a: { budgetId: string; accountId: string; windowStart: Date; thresholdPct: string; direction?: 'up' | 'down'; spendUsd: string; limitUsd: string },
): Promise<string> {
  const { rows } = await db.pool.query(
    `INSERT INTO budget_alerts (budget_id, account_id, window_start, threshold_pct, direction, spend_usd, limit_usd)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::text`,
    [a.budgetId, a.accountId, a.windowStart, a.thresholdPct, a.direction ?? 'up', a.spendUsd, a.limitUsd],
  );
  return rows[0].id;
}

/** `count` alerts of one budget, thresholds 0.0001%, 0.0002%, ... (each its own unique key). Returns their ids. */
export async function insertManyAlerts(db: Database, budgetId: string, accountId: string, count: number): Promise<string[]> {
  const { rows } = await db.pool.query(
    `INSERT INTO budget_alerts (budget_id, account_id, window_start, threshold_pct, direction, spend_usd, limit_usd)
     SELECT $1, $2, '2026-12-01T00:00:00Z', n / 10000.0, 'up', '1.5', '100' FROM generate_series(1, $3::int) AS n
     RETURNING id::text`,
    [budgetId, accountId, count],
  );
  return rows.map((r) => r.id);
}

export interface ReceivedRequest {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  answeredStatus: number;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Max requests being handled at once so far. */
  maxConcurrent: () => number;
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1. `answer(n, headers)` gives the status for the n-th request (0-based);
 * `delayMs` holds each answer back that long; `hang` never answers (a timeout).
 */
export async function startReceiver(
  options: { answer?: (n: number, headers: IncomingHttpHeaders) => number; delayMs?: number; hang?: boolean; port?: number } = {},
): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  let concurrent = 0;
  let max = 0;
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    concurrent += 1;
    max = Math.max(max, concurrent);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = (options.answer ?? (() => 200))(n++, req.headers);
      requests.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answeredStatus: status, at: Date.now() });
      if (options.hang) return;
      setTimeout(() => {
        concurrent -= 1;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/tokenmeter`,
    port,
    requests,
    maxConcurrent: () => max,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
