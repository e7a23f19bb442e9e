import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/**
 * The read side of spend limits (docs/limits.md): what the authorize check keeps in memory.
 * Budgets, budget_windows and accounts.spend_fail_mode are written elsewhere (budgets.repository,
 * budget-spend.repository, accounts.repository); this only reads them, and usage_events and
 * ingest_progress, to settle the holds of requests in flight.
 */
export interface SpendBudgetRecord {
  id: string;
  accountId: string;
  apiKeyId: string | null;
  model: string | null;
  /** Exact decimal text. */
  limitUsd: string;
  window: 'day' | 'month' | 'total';
  enforce: 'hard' | 'soft';
  countsFrom: Date;
  deleted: boolean;
}

export interface SpendWindowRecord {
  budgetId: string;
  windowStartMs: number;
  /** Exact decimal text. */
  spendUsd: string;
  /** bigint, as text. */
  version: string;
}

export interface SpendSnapshot {
  budgets: SpendBudgetRecord[];
  /** Each budget's current window and the one before, as far as they have rows. */
  windows: SpendWindowRecord[];
  /** Accounts whose spend_fail_mode is not the default 'open'. */
  closedAccounts: string[];
}

export interface HeldRequest {
  accountId: string;
  requestId: string;
  /** The event is looked for at occurred_at >= this (the hold's time less a clock-skew margin). */
  since: Date;
}

export interface SettleResult {
  /** Holds whose usage event is stored, as `${accountId}\n${requestId}`. */
  stored: Set<string>;
  /** The windows asked for that have a row, in the same snapshot. */
  windows: SpendWindowRecord[];
  /**
   * min over the topic's partitions of ingest_progress.max_occurred_at; null while fewer partitions
   * than the topic has report progress (one not heard from yet would be passed over) or one has none.
   */
  watermark: Date | null;
}

const BUDGET_COLUMNS = `b.id, b.account_id AS "accountId", b.api_key_id AS "apiKeyId", b.model, b.limit_usd::text AS "limitUsd",
  b.time_window AS "window", b.enforce, b.counts_from AS "countsFrom", b.deleted_at IS NOT NULL AS deleted`;

// The start of the window before the one holding $1, per budget: current and previous windows are
// what the check (and a late event's window) need. Computed in UTC whatever the session's TimeZone.
const PREVIOUS_WINDOW_START = `CASE b.time_window
  WHEN 'day' THEN (date_trunc('day', $1::timestamptz, 'UTC') AT TIME ZONE 'UTC' - interval '1 day') AT TIME ZONE 'UTC'
  WHEN 'month' THEN (date_trunc('month', $1::timestamptz, 'UTC') AT TIME ZONE 'UTC' - interval '1 month') AT TIME ZONE 'UTC'
  ELSE 'epoch'::timestamptz END`;

const WINDOW_COLUMNS = `w.budget_id AS "budgetId", (extract(epoch FROM w.window_start) * 1000)::bigint::text AS "windowStartMs",
  w.spend_usd::text AS "spendUsd", w.version::text AS version`;

interface RawWindow {
  budgetId: string;
  windowStartMs: string;
  spendUsd: string;
  version: string;
}

const toWindow = (r: RawWindow): SpendWindowRecord => ({
  budgetId: r.budgetId,
  windowStartMs: Number(r.windowStartMs),
  spendUsd: r.spendUsd,
  version: r.version,
});

export class SpendStateRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Every live budget with its current and previous windows, and the accounts that fail closed,
   * in one REPEATABLE READ snapshot, so the windows belong to exactly these budgets.
   */
  async loadSpendSnapshot(now: Date): Promise<SpendSnapshot> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const budgets = await client.query<SpendBudgetRecord>(`SELECT ${BUDGET_COLUMNS} FROM budgets b WHERE b.deleted_at IS NULL`);
      const windows = await client.query<RawWindow>(
        `SELECT ${WINDOW_COLUMNS} FROM budget_windows w JOIN budgets b ON b.id = w.budget_id
         WHERE b.deleted_at IS NULL AND w.window_start >= ${PREVIOUS_WINDOW_START}`,
        [now],
      );
      const closed = await client.query<{ id: string }>(`SELECT id FROM accounts WHERE spend_fail_mode <> 'open'`);
      await client.query('COMMIT');
      return { budgets: budgets.rows, windows: windows.rows.map(toWindow), closedAccounts: closed.rows.map((r) => r.id) };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** These budgets (deleted ones too, flagged) with their current and previous windows, in one statement's snapshot. */
  async listBudgetStates(ids: string[], now: Date, q: Queryable = this.pool): Promise<{ budgets: SpendBudgetRecord[]; windows: SpendWindowRecord[] }> {
    const { rows } = await q.query<{ budget: SpendBudgetRecord; windows: RawWindow[] | null }>(
      `SELECT json_build_object('id', b.id, 'accountId', b.account_id, 'apiKeyId', b.api_key_id, 'model', b.model, 'limitUsd', b.limit_usd::text,
                'window', b.time_window, 'enforce', b.enforce, 'countsFrom', b.counts_from, 'deleted', b.deleted_at IS NOT NULL) AS budget,
              (SELECT json_agg(json_build_object('budgetId', w.budget_id, 'windowStartMs', (extract(epoch FROM w.window_start) * 1000)::bigint::text,
                        'spendUsd', w.spend_usd::text, 'version', w.version::text))
               FROM budget_windows w WHERE w.budget_id = b.id AND w.window_start >= ${PREVIOUS_WINDOW_START}) AS windows
       FROM budgets b WHERE b.id = ANY($2::text[])`,
      [now, ids],
    );
    return {
      budgets: rows.map((r) => ({ ...r.budget, countsFrom: new Date(r.budget.countsFrom) })),
      windows: rows.flatMap((r) => (r.windows ?? []).map(toWindow)),
    };
  }

  /** Accounts whose spend_fail_mode is not 'open'. */
  async listClosedAccounts(q: Queryable = this.pool): Promise<string[]> {
    const { rows } = await q.query<{ id: string }>(`SELECT id FROM accounts WHERE spend_fail_mode <> 'open'`);
    return rows.map((r) => r.id);
  }

  /**
   * ONE statement, so one snapshot: which of these holds' events are stored, the spend of these
   * windows, and the topic's ingest watermark. A hold may be released only together with a spend
   * that includes its event: the same snapshot gives both. usage_events has no request_id index;
   * (account_id, occurred_at >= since) narrows each probe to the account's recent events.
   */
  async settleHolds(
    holds: HeldRequest[],
    windows: { budgetId: string; windowStartMs: number }[],
    watermarkOf: { topic: string; partitions: number },
    q: Queryable = this.pool,
  ): Promise<SettleResult> {
    const { rows } = await q.query<{ kind: 'event' | 'window' | 'watermark'; a: string | null; b: string | null; c: string | null; d: string | null }>(
      `WITH held AS (SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS h(account_id, request_id, since))
       SELECT 'event' AS kind, h.account_id AS a, h.request_id AS b, NULL::text AS c, NULL::text AS d FROM held h
       WHERE EXISTS (SELECT 1 FROM usage_events e WHERE e.account_id = h.account_id AND e.occurred_at >= h.since AND e.request_id = h.request_id)
       UNION ALL
       SELECT 'window', w.budget_id, (extract(epoch FROM w.window_start) * 1000)::bigint::text, w.spend_usd::text, w.version::text
       FROM unnest($4::text[], $5::timestamptz[]) AS k(budget_id, window_start)
       JOIN budget_windows w ON w.budget_id = k.budget_id AND w.window_start = k.window_start
       UNION ALL
       SELECT 'watermark', (SELECT CASE WHEN count(*) < $7 OR bool_or(max_occurred_at IS NULL) THEN NULL
                                        ELSE (extract(epoch FROM min(max_occurred_at)) * 1000)::bigint::text END
                            FROM ingest_progress WHERE topic = $6), NULL, NULL, NULL`,
      [
        holds.map((h) => h.accountId),
        holds.map((h) => h.requestId),
        holds.map((h) => h.since),
        windows.map((w) => w.budgetId),
        windows.map((w) => new Date(w.windowStartMs)),
        watermarkOf.topic,
        watermarkOf.partitions,
      ],
    );
    const result: SettleResult = { stored: new Set(), windows: [], watermark: null };
    for (const r of rows) {
      if (r.kind === 'event') result.stored.add(`${r.a}\n${r.b}`);
      else if (r.kind === 'window') result.windows.push({ budgetId: r.a!, windowStartMs: Number(r.b), spendUsd: r.c!, version: r.d! });
      else if (r.a !== null) result.watermark = new Date(Number(r.a));
    }
    return result;
  }
}
