/**
 * The ingest write path without Kafka: where a chunk's time goes, per event.
 *
 *   npm run bench:write-path -- --events 100000 [--chunk 5000] [--database tokenmeter_write_path] [--credits 0] [--budgets 0]
 *
 * Recreates a scratch database (tokenmeter_write_path, or --database: two people benchmarking on
 * one server must not drop each other's), builds N benchmark events in memory, then
 * for each chunk runs UsageIngestor.prepare (parse, validate, hash, price) and record (one
 * transaction) on a single connection, and prints microseconds per event: prepare (ingestor
 * CPU), record (wall time), this process's CPU during record (COPY text, rollup sums, protocol;
 * all threads, so garbage collection too), and the Postgres backend's own CPU time during record
 * (from /proc, so Postgres must run on this machine).
 * --credits N gives the first N accounts an active credit grant, as in bench:ingest, so each chunk
 * also NOTIFYs tokenmeter_credit_usage (docs/credits.md).
 * --budgets N gives the first N accounts a budget, as in bench:ingest, so each chunk also keeps
 * their windows and checks thresholds (docs/limits.md).
 */
import { PriceBookRepository, UsageEventsRepository, createDatabase } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';
import { recreateSeededDatabase } from './scratch-database';
import { WINDOW_MS, makeEvent } from './usage-events';
import { numberArg, stringArg } from './args';
import { cpuMsOf } from './process-cpu';
import { loadConfig } from '@tokenmeter/config';

const EVENTS = numberArg('events', 100_000);
const CHUNK = numberArg('chunk', 5000);
const SCRATCH_DATABASE = stringArg('database', 'tokenmeter_write_path', /^[a-z_][a-z0-9_]*$/);
const ACCOUNTS = 2000;
const CREDITS = process.argv.includes('--credits') ? numberArg('credits', 1) : 0;
const BUDGETS = process.argv.includes('--budgets') ? numberArg('budgets', 1) : 0;
const ADMIN_URL = loadConfig().databaseUrl;

/** user + system CPU of the (local) Postgres backend, in milliseconds. */
function cpuMs(pid: number): number {
  const ms = cpuMsOf(pid);
  if (ms === undefined) throw new Error(`no /proc entry for backend ${pid}: Postgres must run on this machine`);
  return ms;
}

async function main(): Promise<void> {
  const url = await recreateSeededDatabase(ADMIN_URL, SCRATCH_DATABASE);
  const db = createDatabase(url, 1);
  const repository = new UsageEventsRepository(db.pool);
  const ingestor = new UsageIngestor(repository, new PriceBookCache(new PriceBookRepository(db.pool)));
  const { rows } = await db.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backendPid = rows[0].pid;
  if (CREDITS > 0) {
    await db.pool.query(`INSERT INTO accounts (id) SELECT 'acct_' || n FROM generate_series(0, $1 - 1) AS n ON CONFLICT DO NOTHING`, [CREDITS]);
    await db.pool.query(
      `INSERT INTO credit_grants (id, account_id, amount_usd, category, effective_at, idempotency_key, request_hash, status)
       SELECT 'cg_bench_' || n, 'acct_' || n, 1000, 'paid', 'epoch', 'bench_' || n, 'bench', 'active' FROM generate_series(0, $1 - 1) AS n`,
      [CREDITS],
    );
  }
  if (BUDGETS > 0) {
    await db.pool.query(
      `INSERT INTO budgets (id, account_id, api_key_id, model, limit_usd, time_window, thresholds, enforce, counts_from)
       SELECT 'bud_bench_' || n, 'acct_' || n, CASE WHEN n % 3 = 2 THEN 'key_acct_' || n || '_0' END, NULL, 50,
         (ARRAY['day', 'month', 'total'])[n % 3 + 1], '{1,50,80,100}', 'hard', 'epoch'
       FROM generate_series(0, $1 - 1) AS n`,
      [BUDGETS],
    );
  }
  const windowStart = Date.now() - WINDOW_MS;
  // The full run, as in bench:ingest, is 1M events over the window; take its first N.
  const messages = Array.from({ length: EVENTS }, (_, i) => ({
    value: Buffer.from(JSON.stringify(makeEvent(i, windowStart, 1_000_000, ACCOUNTS))),
    key: null,
  }));
  const pricing = await ingestor.pricingContext();
  let prepareMs = 0;
  let recordMs = 0;
  let recordCpuUs = 0;
  let postgresMs = 0;
  for (let start = 0; start < EVENTS; start += CHUNK) {
    const t0 = performance.now();
    const prepared = ingestor.prepare(messages.slice(start, start + CHUNK), 'kafka', pricing);
    const t1 = performance.now();
    const cpu0 = cpuMs(backendPid);
    const ownCpu0 = process.cpuUsage();
    await ingestor.record(prepared);
    const ownCpu = process.cpuUsage(ownCpu0);
    recordCpuUs += ownCpu.user + ownCpu.system;
    recordMs += performance.now() - t1;
    postgresMs += cpuMs(backendPid) - cpu0;
    prepareMs += t1 - t0;
    if ((start / CHUNK) % 10 === 9) process.stderr.write(`[bench:write-path] ${start + CHUNK} / ${EVENTS} events\n`);
  }
  const perEvent = (ms: number) => Math.round((ms * 10_000) / EVENTS) / 10;
  console.log(
    JSON.stringify({
      events: EVENTS,
      chunk: CHUNK,
      credits: CREDITS,
      budgets: BUDGETS,
      prepare_us_per_event: perEvent(prepareMs),
      record_wall_us_per_event: perEvent(recordMs),
      record_ingestor_cpu_us_per_event: perEvent(recordCpuUs / 1000),
      postgres_cpu_us_per_event: perEvent(postgresMs),
      write_paths: repository.writePaths,
    }),
  );
  await db.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
