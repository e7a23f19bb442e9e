/**
 * Dashboard API benchmark: p50/p99 of the usage summary and the daily time series of one account's
 * month, under concurrent load, over a month of 10 million events from 5,000 accounts.
 *
 *   npm run bench:api [-- --events 10000000] [--accounts 5000] [--concurrency 8] [--seconds 20] [--reseed]
 *
 * 1. seeds a scratch database (tokenmeter_bench_api) FAST, in SQL (bench/api-dataset.ts, shared with bench:load): usage_events from
 *    INSERT ... SELECT FROM generate_series (time-ordered, skewed accounts: account i gets a share
 *    ~ i^(-2/3), so acct_00000 is the largest), then usage_hourly with one INSERT ... SELECT ...
 *    GROUP BY over those events. That GROUP BY (libs/db hourly-rollups.ts, rollupOfEventsSql) is
 *    exactly what the ingestor maintains incrementally in the same transaction as each batch of
 *    events, so the rollups are the ones production would hold. Rows are
 *    written hour by hour, accounts within an hour, as time-ordered ingest batches append them, so
 *    their physical layout (which decides how many pages an account's month touches) matches too.
 *    A seeded database is reused when it already holds the same --events/--accounts (--reseed forces).
 * 2. starts the real API (apps/api/src/main.ts) as its own process, LOG_LEVEL=info to /dev/null;
 * 3. for each route: warm-up, then N concurrent keep-alive clients for a fixed time, as the
 *    largest account (worst case: the most rollup rows);
 * 4. prints one final JSON line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import { Client } from 'pg';
import { ensureApiDataset, MONTH_END, MONTH_START, startApi } from './api-dataset';
import { numberArg } from './args';

const EVENTS = Math.floor(numberArg('events', 10_000_000));
const ACCOUNTS = Math.floor(numberArg('accounts', 5_000));
const CONCURRENCY = Math.floor(numberArg('concurrency', 8));
const SECONDS = numberArg('seconds', 20);
const WARMUP_SECONDS = 3;
const RESEED = process.argv.includes('--reseed');

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter';
const BENCH_DB = 'tokenmeter_bench_api';
const BENCH_URL = withDatabase(ADMIN_URL, BENCH_DB);
const ACCOUNT = 'acct_00000';

const log = (msg: string) => process.stderr.write(`[bench:api] ${msg}\n`);

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** An account key for the measured account, inserted as the admin route would store it. */
async function createAccountKey(): Promise<string> {
  const prefix = `tm_live_${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8)}`;
  const key = `${prefix}_${randomBytes(24).toString('base64url').replace(/[-_]/g, 'y').slice(0, 32)}`;
  await withClient(BENCH_URL, (c) =>
    c.query('INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ($1, $2, $3, $4, $5)', [
      `key_bench_${prefix}`, prefix, createHash('sha256').update(key).digest('hex'), 'account', ACCOUNT,
    ]),
  );
  return key;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function get(agent: Agent, port: number, pathAndQuery: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: pathAndQuery, agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface LoadResult {
  latenciesMs: number[];
  errors: number;
}

/** CONCURRENCY clients, each sending its next request as soon as the previous one is answered. */
async function load(port: number, pathAndQuery: string, key: string, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latenciesMs: number[] = [];
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) {
        const t = process.hrtime.bigint();
        const status = await get(agent, port, pathAndQuery, key).catch(() => 0);
        latenciesMs.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (status !== 200) errors++;
      }
    }),
  );
  agent.destroy();
  return { latenciesMs, errors };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(port: number, name: string, pathAndQuery: string, key: string) {
  await load(port, pathAndQuery, key, WARMUP_SECONDS);
  const { latenciesMs, errors } = await load(port, pathAndQuery, key, SECONDS);
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const result = {
    p50: Math.round(percentile(sorted, 50) * 100) / 100,
    p99: Math.round(percentile(sorted, 99) * 100) / 100,
    requests: sorted.length,
    errors,
    rps: Math.round(sorted.length / SECONDS),
  };
  log(`${name}: ${JSON.stringify(result)}`);
  return result;
}

async function main(): Promise<void> {
  await ensureApiDataset({ adminUrl: ADMIN_URL, database: BENCH_DB, events: EVENTS, accounts: ACCOUNTS, reseed: RESEED, log });

  const facts = await withClient(BENCH_URL, async (c) => ({
    accountEvents: Number((await c.query('SELECT count(*) FROM usage_events WHERE account_id = $1', [ACCOUNT])).rows[0].count),
    accountRollupRows: Number((await c.query('SELECT count(*) FROM usage_hourly WHERE account_id = $1', [ACCOUNT])).rows[0].count),
    rollupRows: Number((await c.query('SELECT count(*) FROM usage_hourly')).rows[0].count),
  }));
  log(`measured account ${ACCOUNT}: ${facts.accountEvents.toLocaleString('en')} events, ${facts.accountRollupRows.toLocaleString('en')} rollup rows (of ${facts.rollupRows.toLocaleString('en')})`);

  const key = await createAccountKey();
  const port = await freePort();
  const api = await startApi(BENCH_URL, port);
  try {
    const range = `from=${MONTH_START}&to=${MONTH_END}`;
    const check = await fetch(`http://127.0.0.1:${port}/v1/usage/summary?${range}`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await check.json()) as { totals?: { requests?: number } };
    if (check.status !== 200 || body.totals?.requests !== facts.accountEvents) {
      throw new Error(`summary sanity check failed: ${check.status} ${JSON.stringify(body).slice(0, 300)}`);
    }
    log(`load: ${CONCURRENCY} concurrent clients, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per route; ${os.cpus().length} CPUs`);
    const summary = await measure(port, 'summary', `/v1/usage/summary?${range}`, key);
    const timeseries = await measure(port, 'timeseries (day)', `/v1/usage/timeseries?${range}&granularity=day`, key);
    console.log(
      JSON.stringify({
        events: EVENTS,
        accounts: ACCOUNTS,
        account_events: facts.accountEvents,
        account_rollup_rows: facts.accountRollupRows,
        summary_p50_ms: summary.p50,
        summary_p99_ms: summary.p99,
        timeseries_p50_ms: timeseries.p50,
        timeseries_p99_ms: timeseries.p99,
        concurrency: CONCURRENCY,
        requests: summary.requests + timeseries.requests,
        errors: summary.errors + timeseries.errors,
        summary_rps: summary.rps,
        timeseries_rps: timeseries.rps,
      }),
    );
  } finally {
    api.kill('SIGTERM');
    await new Promise((r) => api.once('exit', r));
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
