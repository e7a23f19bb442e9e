/**
 * End-to-end ingestion benchmark: Kafka -> ingestor process -> Postgres (events + rollups).
 *
 *   npm run bench:ingest -- --events 1000000 [--partitions N] [--accounts 2000] [--ingestors 1] [--budgets 0] [--credits 0] [--no-peer]
 *
 * --partitions N: the bench topic's partition count; by default KAFKA_USAGE_TOPIC_PARTITIONS (120
 * unless set), what a deployment's topic gets. Runs before session 8 used 6 (`--partitions 6` to
 * compare with them). The count is passed to the ingestor processes as KAFKA_USAGE_TOPIC_PARTITIONS.
 * --budgets N gives the first N accounts a budget each (day, month or total in turn; every third
 * one on an API key), so the ingest transaction also keeps their windows and checks thresholds.
 * --credits N gives the first N accounts an active credit grant each (every third one scoped to a
 * model, every fifth one expiring in a year), so the ingest transaction NOTIFYs their usage
 * (tokenmeter_credit_usage, docs/credits.md).
 * --no-peer skips the peer (step 5), for quick runs; it is skipped with --budgets or --credits too
 * (the peer keeps neither, so the comparison would not be like for like).
 * BENCH_DB names the scratch database (default tokenmeter_bench; the peer's is <BENCH_DB>_peer), so
 * two people can run it at once.
 *
 * 1. recreates a scratch database (tokenmeter_bench), migrates and seeds it, and an identical one
 *    for the peer;
 * 2. publishes N realistic events (mixed models and usage shapes, 5% redeliveries) to a fresh topic;
 * 3. starts the real ingestor (apps/ingestor) against that backlog and measures sustained events/s
 *    from the moment a tenth of the backlog is committed until every message is committed and rolled up, and its peak RSS;
 * 4. measures the COPY ceiling: the same rows COPY'd into identical scratch tables (copyCeiling);
 * 5. starts the peer (bench/peer-ingestor.ts: kafkajs eachBatch + Prisma createMany + rollup upserts)
 *    as its own process(es), in its own consumer group, on the same topic, against its own database,
 *    once ours has finished (so the two never share the box), and measures it the same way;
 * 6. checks each database holds exactly N events and rollups equal to those events, and that both
 *    priced the events to the same total; prints one final JSON line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { databaseUrlFor, recreateSeededDatabase } from './scratch-database';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { publishEvents } from './usage-events';
import { numberArg } from './args';
import { backendCpuMs, backendCpuMsBetween, cpuMsOf } from './process-cpu';
import { loadConfig } from '@tokenmeter/config';
import { BudgetSpendRepository, createDatabase, ROLLUP_COLUMNS, rollupOfEventsSql } from '@tokenmeter/db';

const ROOT = path.resolve(__dirname, '..');

const EVENTS = numberArg('events', 1_000_000);
const PARTITIONS = numberArg('partitions', loadConfig().kafka.topicPartitions);
const ACCOUNTS = numberArg('accounts', 2000);
const INGESTORS = numberArg('ingestors', 1);
const BUDGETS = process.argv.includes('--budgets') ? numberArg('budgets', 1) : 0;
const CREDITS = process.argv.includes('--credits') ? numberArg('credits', 1) : 0;
// The peer keeps no budgets or credits: with either, ours does work the peer does not.
const PEER = !process.argv.includes('--no-peer') && BUDGETS === 0 && CREDITS === 0;
// INGESTOR_PROCESSES > 1 makes each of ours a supervisor of that many consumers; the peer has no
// supervisor, so it gets as many separate processes instead (one consumer each, either way).
const PEER_PROCESSES = INGESTORS * Number(process.env.INGESTOR_PROCESSES ?? 1);
const ADMIN_URL = loadConfig().databaseUrl;
const BENCH_DB = process.env.BENCH_DB ?? 'tokenmeter_bench';
const BENCH_URL = databaseUrlFor(ADMIN_URL, BENCH_DB);
const PEER_URL = databaseUrlFor(ADMIN_URL, `${BENCH_DB}_peer`);
const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

const log = (msg: string) => process.stderr.write(`[bench:ingest] ${msg}\n`);

async function prepareDatabase(): Promise<void> {
  await recreateSeededDatabase(ADMIN_URL, BENCH_DB);
  // The same migrations and price book, empty: the peer starts where ours started.
  if (PEER) await recreateSeededDatabase(ADMIN_URL, `${BENCH_DB}_peer`);
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
/** A process and its descendants (INGESTOR_PROCESSES > 1 forks them); [] once it has exited. */
function processTree(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [pid, ...children.flatMap(processTree)];
  } catch {
    return [];
  }
}

/** Peak RSS (VmHWM) of a process, in MB. */
function peakRssMb(pid: number): number {
  try {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return hwm ? Math.round(Number(hwm[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** One ingestor under test: how to start one of its processes and how far its group has committed. */
interface IngestorUnderTest {
  name: string;
  /** Node arguments of one process (after the ts-node loader). */
  args: string[];
  processes: number;
  databaseUrl: string;
  groupId: string;
  /** Messages committed so far; `db` is the benchmark's own connection to the subject's database. */
  committed: (db: Client) => Promise<number>;
  close?: () => Promise<void>;
}

interface IngestRun {
  messagesPerS: number;
  eventsPerS: number;
  seconds: number;
  peakRssMb: number;
  busyUsPerMessage: number;
  busyCores: number;
  /**
   * CPU of the ingestor's processes and of the Postgres backends serving its database, per message,
   * over the same window: unlike the machine's busy time, what the other users of a shared box
   * do hardly moves these.
   */
  ingestorCpuUsPerMessage: number;
  postgresCpuUsPerMessage: number;
}

async function runIngestor(subject: IngestorUnderTest, kafka: Kafka, topic: string, messages: number): Promise<IngestRun> {
  // Several processes join one consumer group, as a deployment would scale the ingestor out.
  const children = Array.from({ length: subject.processes }, () =>
    spawn(process.execPath, ['-r', 'ts-node/register', ...subject.args], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: subject.databaseUrl,
        KAFKA_USAGE_TOPIC: topic,
        KAFKA_USAGE_TOPIC_PARTITIONS: String(PARTITIONS),
        KAFKA_GROUP_ID: subject.groupId,
        LOG_LEVEL: 'warn',
        DATABASE_POOL_SIZE: '6',
        // Each process its own free port: with --ingestors N they would all ask for 9464.
        INGESTOR_METRICS_PORT: '0',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const stopOnSignal = () => {
    for (const c of children) c.kill('SIGTERM');
    process.exit(130);
  };
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  try {
    return await measure(subject, children, messages, () => logGroupShares(kafka, subject, topic));
  } finally {
    // SIGTERM: each finishes its batch in flight and leaves the group (also when one of them failed).
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => { c.on('exit', r); c.kill('SIGTERM'); }))));
    process.off('SIGINT', stopOnSignal).off('SIGTERM', stopOnSignal);
    await subject.close?.();
  }
}

/** The counters a run is measured by, read at the clock's start and at its end. */
interface Reading {
  atMs: number;
  committed: number;
  machineBusyUs: number;
  ingestorCpuMs: number;
  backendCpuMs: Map<number, number>;
}

async function measure(subject: IngestorUnderTest, children: ChildProcess[], messages: number, atClockStart: () => Promise<void>): Promise<IngestRun> {
  const pids = () => children.flatMap((c) => processTree(c.pid!));
  const peakRss = () => pids().reduce((sum, pid) => sum + peakRssMb(pid), 0);
  const database = new URL(subject.databaseUrl).pathname.slice(1);
  const db = new Client({ connectionString: subject.databaseUrl });
  await db.connect();
  const read = async (committed: number): Promise<Reading> => ({
    atMs: Date.now(),
    committed,
    machineBusyUs: machineBusyUs(),
    ingestorCpuMs: pids().reduce((sum, pid) => sum + (cpuMsOf(pid) ?? 0), 0),
    backendCpuMs: await backendCpuMs(db, database),
  });
  try {
    let start: Reading | undefined;
    let peak = 0;
    let lastReport = 0;
    for (;;) {
      const n = await subject.committed(db);
      const now = Date.now();
      peak = Math.max(peak, peakRss());
      // The clock starts once a tenth of the backlog is committed, not at the first commit: by then
      // every lane is in steady state, and the chunks that were already in flight when the first
      // one landed (up to one per lane) do not flatter the rate.
      if (n >= messages / 10 && start === undefined) {
        start = await read(n);
        await atClockStart();
      }
      if (now - lastReport > 2000) {
        const rate = start ? `, ${Math.round((n - start.committed) / ((now - start.atMs) / 1000 || 1))}/s` : '';
        log(`${subject.name}: committed ${n} / ${messages} messages${rate}, rss peak ${peak} MB`);
        lastReport = now;
      }
      if (n >= messages) break;
      const exited = children.find((c) => c.exitCode !== null);
      if (exited) throw new Error(`${subject.name} exited with ${exited.exitCode}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const end = await read(messages);
    start ??= end;
    peak = Math.max(peak, peakRss());
    const seconds = (end.atMs - start.atMs) / 1000;
    const measured = messages - start.committed;
    const busyUs = end.machineBusyUs - start.machineBusyUs;
    // Messages include the 5% redeliveries; events/s counts distinct events only, so duplicates
    // (cheap no-ops) do not flatter the figure.
    const messagesPerS = measured / seconds;
    return {
      messagesPerS: Math.round(messagesPerS),
      eventsPerS: Math.round((messagesPerS * EVENTS) / messages),
      seconds,
      peakRssMb: peak,
      busyUsPerMessage: busyUs / measured,
      busyCores: busyUs / 1e6 / seconds,
      ingestorCpuUsPerMessage: ((end.ingestorCpuMs - start.ingestorCpuMs) * 1000) / measured,
      postgresCpuUsPerMessage: (backendCpuMsBetween(start.backendCpuMs, end.backendCpuMs) * 1000) / measured,
    };
  } finally {
    await db.end();
  }
}

/**
 * Which member of the group consumes how many partitions, once the clock starts: with --ingestors N
 * every process should hold a share (kafkajs' round-robin assigner: ceil or floor of partitions / N).
 */
async function logGroupShares(kafka: Kafka, subject: IngestorUnderTest, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([subject.groupId]);
    const shares = groups[0].members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[topic]?.length ?? 0);
    log(`${subject.name}: group ${subject.groupId} has ${shares.length} member(s) (${subject.processes} process(es) started), partitions per member ${shares.sort().join('/')}`);
  } finally {
    await admin.disconnect();
  }
}

/** Ours records each partition's next offset in ingest_progress, in the transaction that stores its events. */
function ours(topic: string): IngestorUnderTest {
  return {
    name: 'ingestor',
    args: [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), 'apps/ingestor/src/main.ts'],
    processes: INGESTORS,
    databaseUrl: BENCH_URL,
    groupId: `${topic}.group`,
    committed: async (db) => Number((await db.query('SELECT coalesce(sum(next_offset), 0) AS n FROM ingest_progress WHERE topic = $1', [topic])).rows[0].n),
  };
}

/** The peer commits its offsets to Kafka after each batch's transaction: read them from the broker. */
function peer(topic: string, kafka: Kafka): IngestorUnderTest {
  const admin = kafka.admin();
  const connected = admin.connect();
  const groupId = `${topic}.peer`;
  return {
    name: 'peer',
    args: ['bench/peer-ingestor.ts'],
    processes: PEER_PROCESSES,
    databaseUrl: PEER_URL,
    groupId,
    committed: async () => {
      await connected;
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return offsets.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    },
    close: () => connected.then(() => admin.disconnect()),
  };
}

/**
 * Exactly EVENTS events stored, and usage_hourly equal, row for row and to the last digit, to the
 * rollup of those events (what the dashboards and invoices rely on); returns the total cost.
 */
async function checkTotals(name: string, url: string): Promise<string> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    const rollup = rollupOfEventsSql('usage_events', '');
    const columns = ROLLUP_COLUMNS.join(', ');
    const { rows } = await db.query<{ raw: string; rolled: string; off: string; cost: string }>(
      `SELECT (SELECT count(*) FROM usage_events) AS raw, (SELECT sum(requests) FROM usage_hourly) AS rolled,
         (SELECT count(*) FROM ((SELECT ${columns} FROM usage_hourly EXCEPT ${rollup}) UNION ALL (${rollup} EXCEPT SELECT ${columns} FROM usage_hourly)) d) AS off,
         (SELECT sum(cost_usd)::text FROM usage_hourly) AS cost`,
    );
    const { raw, rolled, off, cost } = rows[0];
    if (Number(raw) !== EVENTS || Number(rolled) !== EVENTS || Number(off) !== 0) {
      throw new Error(`${name}: stored ${raw} events, rolled up ${rolled}, ${off} rollup rows differ from the events; expected ${EVENTS}, ${EVENTS}, 0`);
    }
    return cost;
  } finally {
    await db.end();
  }
}

/**
 * The ceiling: every stored event's rows COPY'd into identical scratch tables (same columns,
 * indexes, constraints): its usage_events row and its usage_event_ids row (the event_id dedupe,
 * which holds the unique index usage_events had before it was partitioned). The copies are not
 * partitioned: routing rows to a month is part of what ingest pays, not of the ceiling.
 */
async function copyCeiling(): Promise<number> {
  const db = new Client({ connectionString: BENCH_URL });
  await db.connect();
  let seconds = 0;
  let events = 0;
  for (const table of ['usage_events', 'usage_event_ids']) {
    const file = path.join(os.tmpdir(), `tokenmeter-bench-${process.pid}-${table}.copy`);
    await db.query(`DROP TABLE IF EXISTS ${table}_copy; CREATE TABLE ${table}_copy (LIKE ${table} INCLUDING ALL)`);
    // COPY <partitioned table> TO is refused; COPY (SELECT ...) TO reads every partition.
    await pipeline(db.query(copyTo(`COPY (SELECT * FROM ${table}) TO STDOUT (FORMAT binary)`)), createWriteStream(file));
    log(`measuring COPY ceiling (${table})`);
    const started = process.hrtime.bigint();
    await pipeline(createReadStream(file), db.query(copyFrom(`COPY ${table}_copy FROM STDIN (FORMAT binary)`)));
    seconds += Number(process.hrtime.bigint() - started) / 1e9;
    const { rows } = await db.query(`SELECT count(*) FROM ${table}_copy`);
    if (table === 'usage_events') events = Number(rows[0].count);
    await db.query(`DROP TABLE ${table}_copy`);
    rmSync(file, { force: true });
  }
  await db.end();
  return Math.round(events / seconds);
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

const cpuUsPerMessage = (run: IngestRun) => run.ingestorCpuUsPerMessage + run.postgresCpuUsPerMessage;

async function main(): Promise<void> {
  log(`${EVENTS} events, ${PARTITIONS} partitions, ${ACCOUNTS} accounts, ${INGESTORS} ingestor process(es), ${BUDGETS} budgets, ${CREDITS} credit grants${PEER ? `, peer in ${PEER_PROCESSES} process(es)` : ', no peer'}`);
  await prepareDatabase();
  const kafka = new Kafka({ clientId: 'tokenmeter-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const topic = `bench.usage.${Date.now().toString(36)}`;
  const publishStarted = Date.now();
  const messages = await publishEvents(kafka, topic, { brokers: BROKERS, events: EVENTS, partitions: PARTITIONS, accounts: ACCOUNTS, log });
  log(`published ${messages} messages (${messages - EVENTS} redeliveries) in ${((Date.now() - publishStarted) / 1000).toFixed(1)} s`);
  const ingest = await runIngestor(ours(topic), kafka, topic, messages);
  const cost = await checkTotals('ingestor', BENCH_URL);
  const copyRowsPerS = await copyCeiling();
  let peerRun: IngestRun | undefined;
  if (PEER) {
    peerRun = await runIngestor(peer(topic, kafka), kafka, topic, messages);
    const peerCost = await checkTotals('peer', PEER_URL);
    if (peerCost !== cost) throw new Error(`the peer's rollups total ${peerCost} USD, ours ${cost}: not the same pricing`);
  }
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
    ...(peerRun
      ? {
          peer_events_per_s: peerRun.eventsPerS,
          vs_peer: Math.round((ingest.eventsPerS / peerRun.eventsPerS) * 100) / 100,
        }
      : {}),
    ingestor_peak_rss_mb: ingest.peakRssMb,
    machine_busy_cores: Math.round(ingest.busyCores * 100) / 100,
    machine_busy_us_per_message: Math.round(ingest.busyUsPerMessage * 10) / 10,
    ingestor_cpu_us_per_message: Math.round(ingest.ingestorCpuUsPerMessage * 10) / 10,
    postgres_cpu_us_per_message: Math.round(ingest.postgresCpuUsPerMessage * 10) / 10,
    ...(peerRun
      ? {
          peer_seconds: Math.round(peerRun.seconds * 10) / 10,
          peer_peak_rss_mb: peerRun.peakRssMb,
          peer_machine_busy_cores: Math.round(peerRun.busyCores * 100) / 100,
          peer_machine_busy_us_per_message: Math.round(peerRun.busyUsPerMessage * 10) / 10,
          peer_ingestor_cpu_us_per_message: Math.round(peerRun.ingestorCpuUsPerMessage * 10) / 10,
          peer_postgres_cpu_us_per_message: Math.round(peerRun.postgresCpuUsPerMessage * 10) / 10,
          // The CPU both spend per message (ingestor + its Postgres backends), peer over ours: the
          // comparison a shared box's load moves least.
          vs_peer_cpu: Math.round((cpuUsPerMessage(peerRun) / cpuUsPerMessage(ingest)) * 100) / 100,
        }
      : {}),
    ...(BUDGETS > 0 ? await budgetCheck() : {}),
  };
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
