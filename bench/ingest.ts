/**
 * End-to-end ingestion benchmark: Kafka -> ingestor process -> Postgres (events + rollups).
 *
 *   npm run bench:ingest -- --events 1000000 [--partitions 6] [--accounts 2000] [--ingestors 1] [--budgets 0] [--credits 0]
 *
 * --budgets N gives the first N accounts a budget each (day, month or total in turn; every third
 * one on an API key), so the ingest transaction also keeps their windows and checks thresholds.
 * --credits N gives the first N accounts an active credit grant each (every third one scoped to a
 * model, every fifth one expiring in a year), so the ingest transaction NOTIFYs their usage
 * (tokenmeter_credit_usage, docs/credits.md).
 * BENCH_DB names the scratch database (default tokenmeter_bench), so two people can run it at once.
 *
 * 1. recreates a scratch database (tokenmeter_bench), migrates and seeds it;
 * 2. publishes N realistic events (mixed models and usage shapes, 5% redeliveries) to a fresh topic;
 * 3. starts the real ingestor (apps/ingestor) against that backlog and measures sustained events/s
 *    from the moment a tenth of the backlog is committed until every message is committed and rolled up, and its peak RSS;
 * 4. measures the COPY ceiling: the same rows COPY'd into an identical scratch table;
 * 5. prints one final JSON line.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { recreateSeededDatabase } from './scratch-database';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { publishEvents } from './usage-events';
import { numberArg } from './args';
import { loadConfig } from '@tokenmeter/config';
import { BudgetSpendRepository, createDatabase } from '@tokenmeter/db';

const ROOT = path.resolve(__dirname, '..');

const EVENTS = numberArg('events', 1_000_000);
const PARTITIONS = numberArg('partitions', 6);
const ACCOUNTS = numberArg('accounts', 2000);
const INGESTORS = numberArg('ingestors', 1);
const BUDGETS = process.argv.includes('--budgets') ? numberArg('budgets', 1) : 0;
const CREDITS = process.argv.includes('--credits') ? numberArg('credits', 1) : 0;
const ADMIN_URL = loadConfig().databaseUrl;
const BENCH_DB = process.env.BENCH_DB ?? 'tokenmeter_bench';
const BENCH_URL = withDatabase(ADMIN_URL, BENCH_DB);
const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

const log = (msg: string) => process.stderr.write(`[bench:ingest] ${msg}\n`);

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function prepareDatabase(): Promise<void> {
  await recreateSeededDatabase(ADMIN_URL, BENCH_DB);
  if (BUDGETS === 0 && CREDITS === 0) return;
  const db = new Client({ connectionString: BENCH_URL });
  await db.connect();
  if (CREDITS > 0) {
    await db.query(`INSERT INTO accounts (id) SELECT 'acct_' || n FROM generate_series(0, $1 - 1) AS n ON CONFLICT DO NOTHING`, [CREDITS]);
    await db.query(
      `INSERT INTO credit_grants (id, account_id, amount_usd, category, priority, effective_at, expires_at, models, idempotency_key, request_hash, status)
       SELECT 'cg_bench_' || n, 'acct_' || n, 1000, CASE WHEN n % 2 = 0 THEN 'paid' ELSE 'promotional' END, 0, 'epoch',
         CASE WHEN n % 5 = 4 THEN now() + interval '1 year' END, CASE WHEN n % 3 = 2 THEN ARRAY['gpt-4o'] ELSE ARRAY[]::text[] END,
         'bench_' || n, 'bench', 'active'
       FROM generate_series(0, $1 - 1) AS n`,
      [CREDITS],
    );
    log(`${CREDITS} credit grants created`);
  }
  if (BUDGETS === 0) {
    await db.end();
    return;
  }
  // Limits far above what the run spends, thresholds low enough that some are crossed.
  await db.query(
    `INSERT INTO budgets (id, account_id, api_key_id, model, limit_usd, time_window, thresholds, enforce, counts_from)
     SELECT 'bud_bench_' || n, 'acct_' || n, CASE WHEN n % 3 = 2 THEN 'key_acct_' || n || '_0' END, NULL, 50,
       (ARRAY['day', 'month', 'total'])[n % 3 + 1], '{1,50,80,100}', 'hard', 'epoch'
     FROM generate_series(0, $1 - 1) AS n`,
    [BUDGETS],
  );
  await db.end();
  log(`${BUDGETS} budgets created`);
}

// /proc/stat counts in USER_HZ ticks: 100 on every Linux architecture Node runs on (getconf CLK_TCK).
const CLOCK_TICKS_PER_S = 100;

/**
 * Busy CPU time of the whole machine so far, in microseconds (user + nice + system + irq +
 * softirq + steal from /proc/stat; idle and iowait excluded). Ingestor, Postgres and the broker
 * share this box, so busy time per message is what bounds throughput: at saturation events/s is
 * about cores / (busy us per event).
 */
function machineBusyUs(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1e6) / CLOCK_TICKS_PER_S;
}
/** Peak RSS (VmHWM) of a process plus its child processes (INGESTOR_PROCESSES > 1 forks them). */
function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const own = hwm ? Math.round(Number(hwm[1]) / 1024) : 0;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return own + children.reduce((sum, child) => sum + peakRssMb(child), 0);
  } catch {
    return 0;
  }
}

async function runIngestor(
  topic: string,
  messages: number,
): Promise<{ messagesPerS: number; eventsPerS: number; seconds: number; peakRssMb: number; busyUsPerMessage: number; busyCores: number }> {
  // Several processes join one consumer group, as a deployment would scale the ingestor out.
  const children = Array.from({ length: INGESTORS }, () =>
    spawn(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), '-r', 'ts-node/register', 'apps/ingestor/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: BENCH_URL, KAFKA_USAGE_TOPIC: topic, KAFKA_GROUP_ID: `${topic}.group`, LOG_LEVEL: 'warn', DATABASE_POOL_SIZE: '6' },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const peakRss = () => children.reduce((sum, c) => sum + peakRssMb(c.pid!), 0);
  const db = new Client({ connectionString: BENCH_URL });
  await db.connect();
  const committed = async () => Number((await db.query('SELECT coalesce(sum(next_offset), 0) AS n FROM ingest_progress WHERE topic = $1', [topic])).rows[0].n);
  let firstAt = 0;
  let firstCount = 0;
  let firstBusyUs = 0;
  let peak = 0;
  let lastReport = 0;
  for (;;) {
    const n = await committed();
    const now = Date.now();
    peak = Math.max(peak, peakRss());
    // The clock starts once a tenth of the backlog is committed, not at the first commit: by then
    // every lane is in steady state, and the chunks that were already in flight when the first
    // one landed (up to one per lane) do not flatter the rate.
    if (n >= messages / 10 && firstAt === 0) {
      firstAt = now;
      firstCount = n;
      firstBusyUs = machineBusyUs();
    }
    if (now - lastReport > 2000) {
      log(`committed ${n} / ${messages} messages${firstAt ? `, ${Math.round((n - firstCount) / ((now - firstAt) / 1000 || 1))}/s` : ''}, ingestor rss peak ${peak} MB`);
      lastReport = now;
    }
    if (n >= messages) break;
    const exited = children.find((c) => c.exitCode !== null);
    if (exited) throw new Error(`ingestor exited with ${exited.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (Date.now() - firstAt) / 1000;
  const busyUs = machineBusyUs() - firstBusyUs;
  peak = Math.max(peak, peakRss());
  await Promise.all(children.map((c) => new Promise((r) => { c.on('exit', r); c.kill('SIGTERM'); })));
  const { rows } = await db.query('SELECT (SELECT count(*) FROM usage_events) AS raw, (SELECT sum(requests) FROM usage_hourly) AS rolled');
  await db.end();
  if (Number(rows[0].raw) !== EVENTS || Number(rows[0].rolled) !== EVENTS) {
    throw new Error(`stored ${rows[0].raw} events, rolled up ${rows[0].rolled}; expected ${EVENTS}`);
  }
  // Messages include the 5% redeliveries; events/s counts distinct events only, so duplicates
  // (cheap no-ops) do not flatter the figure.
  const messagesPerS = (messages - firstCount) / seconds;
  return {
    messagesPerS: Math.round(messagesPerS),
    eventsPerS: Math.round((messagesPerS * EVENTS) / messages),
    seconds,
    peakRssMb: peak,
    busyUsPerMessage: busyUs / (messages - firstCount),
    busyCores: busyUs / 1e6 / seconds,
  };
}

/** The ceiling: the same rows COPY'd into an identical table (same columns, indexes, constraints). */
async function copyCeiling(): Promise<number> {
  const file = path.join(os.tmpdir(), `tokenmeter-bench-${process.pid}.copy`);
  const db = new Client({ connectionString: BENCH_URL });
  await db.connect();
  await db.query('DROP TABLE IF EXISTS usage_events_copy; CREATE TABLE usage_events_copy (LIKE usage_events INCLUDING ALL)');
  await pipeline(db.query(copyTo('COPY usage_events TO STDOUT (FORMAT binary)')), createWriteStream(file));
  log('measuring COPY ceiling');
  const started = process.hrtime.bigint();
  await pipeline(createReadStream(file), db.query(copyFrom('COPY usage_events_copy FROM STDIN (FORMAT binary)')));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { rows } = await db.query('SELECT count(*) FROM usage_events_copy');
  await db.query('DROP TABLE usage_events_copy');
  await db.end();
  rmSync(file, { force: true });
  return Math.round(Number(rows[0].count) / seconds);
}

/** After a run with budgets: their windows must equal the rollups exactly; and how many alerts were raised. */
async function budgetCheck(): Promise<{ budget_windows: number; budget_windows_off: number; budget_alerts: number }> {
  const db = createDatabase(BENCH_URL, 2);
  try {
    const spend = new BudgetSpendRepository(db.pool);
    const [windows, drift, alerts] = await Promise.all([spend.countWindows(), spend.drift(), db.pool.query('SELECT count(*) AS n FROM budget_alerts')]);
    return { budget_windows: windows, budget_windows_off: drift.length, budget_alerts: Number(alerts.rows[0].n) };
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  log(`${EVENTS} events, ${PARTITIONS} partitions, ${ACCOUNTS} accounts, ${INGESTORS} ingestor process(es), ${BUDGETS} budgets, ${CREDITS} credit grants`);
  await prepareDatabase();
  const kafka = new Kafka({ clientId: 'tokenmeter-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const topic = `bench.usage.${Date.now().toString(36)}`;
  const publishStarted = Date.now();
  const messages = await publishEvents(kafka, topic, { brokers: BROKERS, events: EVENTS, partitions: PARTITIONS, accounts: ACCOUNTS, log });
  log(`published ${messages} messages (${messages - EVENTS} redeliveries) in ${((Date.now() - publishStarted) / 1000).toFixed(1)} s`);
  const ingest = await runIngestor(topic, messages);
  const copyRowsPerS = await copyCeiling();
  const result = {
    events: EVENTS,
    budgets: BUDGETS,
    credits: CREDITS,
    messages,
    seconds: Math.round(ingest.seconds * 10) / 10,
    messages_per_s: ingest.messagesPerS,
    events_per_s: ingest.eventsPerS,
    copy_rows_per_s: copyRowsPerS,
    ratio: Math.round((ingest.eventsPerS / copyRowsPerS) * 100) / 100,
    ingestor_peak_rss_mb: ingest.peakRssMb,
    machine_busy_cores: Math.round(ingest.busyCores * 100) / 100,
    machine_busy_us_per_message: Math.round(ingest.busyUsPerMessage * 10) / 10,
    ...(BUDGETS > 0 ? await budgetCheck() : {}),
  };
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
