/**
 * Resilience cases against real processes: the harness's own Kafka broker and Postgres cluster
 * (scripts/chaos/services.ts, never the shared ones) and the ingestor as child processes.
 *
 *   npm run chaos                      # every case, one after the other
 *   npm run chaos:kafka-kill           # SIGKILL the broker mid-stream, restart it
 *   npm run chaos:postgres-restart     # pg_ctlcluster ... restart -m fast, twice, mid-stream
 *   npm run chaos:ingestor-kill        # SIGKILL the ingestor every 3-6 s for a minute, restarting it each time
 *   npm run chaos:rebalance            # consumer group 1 -> 3 -> 1 members while publishing
 *   npm run chaos:backup-restore       # pg_dump (mid-stream and quiesced), pg_restore, reconcile to the cent
 *   options: --rate <messages/s> (default 1000)
 *
 * Each ingest case publishes a known message set (workload.ts: valid events, redeliveries,
 * malformed messages, same-id-different-payload conflicts) at a steady rate, injects its fault
 * while publishing and consuming, waits until ingestion has caught up, then asserts (verify.ts):
 * every valid event stored exactly once with its exact cost (priced independently), cost sums
 * per account, rollups == raw events in every column, rejected_events == the malformed messages
 * == the DLQ (by original offset), event_conflicts, and committed offsets == ingest_progress ==
 * high watermark per partition. It prints progress every 2 s, the recovery times of each fault,
 * and one JSON line; it exits non-zero when any check fails.
 */
import { execFile } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { createDatabase, ReconciliationRepository, type Database } from '@tokenmeter/db';
import { createTopicsAndWait } from '@tokenmeter/ingest';
import { ReconciliationService } from '@tokenmeter/invoicing';
import { numberArg } from '../../bench/args';
import { recreateSeededDatabase } from '../../bench/scratch-database';
import { committedOffsets, withAdmin } from '../../test/helpers/kafka';
import { IngestorPool } from './ingestors';
import { Monitor, type Fault, type Recovery } from './monitor';
import {
  CHAOS_ADMIN_URL,
  CHAOS_BROKERS,
  CHAOS_DATABASE,
  CHAOS_PARTITIONS,
  CHAOS_PG_PORT,
  chaosDatabaseUrl,
  chaosKafka,
  killBroker,
  restartPostgres,
  servicesDown,
  servicesUp,
  startBroker,
} from './services';
import { checkStored, checkTopicAgainstPlan, expectedFrom, highWatermarks, readWholeTopic, type Check } from './verify';
import { planMessages, publishPaced, sleep, type PlannedMessage, type PublisherState } from './workload';

const execFileAsync = promisify(execFile);
const RATE = numberArg('rate', 1000);
const PARTITIONS = CHAOS_PARTITIONS;
const ACCOUNTS = 300;

let caseName = 'chaos';
const caseStarted = { at: Date.now() };
const log = (msg: string) => process.stderr.write(`[chaos:${caseName} ${((Date.now() - caseStarted.at) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);

interface CaseResult {
  case: string;
  ok: boolean;
  checks: Check[];
  recoveries: Recovery[];
  facts: Record<string, unknown>;
}

interface Ctx {
  kafka: Kafka;
  topic: string;
  groupId: string;
  databaseUrl: string;
  pool: IngestorPool;
  monitor: Monitor;
  publisher: PublisherState;
  facts: Record<string, unknown>;
}

async function createTopics(kafka: Kafka, topic: string): Promise<void> {
  await withAdmin(kafka, (admin) =>
    createTopicsAndWait(admin, [
      { topic, numPartitions: PARTITIONS, replicationFactor: 1 },
      { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 },
    ]),
  );
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not yet (a service may still be coming back)
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Until every partition's committed offset and stored progress equal its high watermark. */
async function waitCaughtUp(kafka: Kafka, db: Database, topic: string, groupId: string, timeoutMs: number): Promise<number> {
  let lastLog = 0;
  await waitUntil(
    'committed offsets == ingest_progress == high watermark',
    async () => {
      const hw = await highWatermarks(kafka, topic);
      const committed = await committedOffsets(kafka, groupId, topic);
      const { rows } = await db.pool.query('SELECT partition, next_offset::text FROM ingest_progress WHERE topic = $1', [topic]);
      const stored = new Map(rows.map((r) => [r.partition as number, BigInt(r.next_offset)]));
      const behind = [...hw].filter(([p, high]) => {
        const c = BigInt(committed[p] ?? '-1');
        return (c < 0n ? 0n : c) !== high || (stored.get(p) ?? 0n) !== high;
      });
      if (behind.length > 0 && Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`waiting to catch up: ${behind.map(([p, high]) => `p${p} committed ${committed[p]} stored ${stored.get(p) ?? 0} high ${high}`).join(', ')}`);
      }
      return behind.length === 0;
    },
    timeoutMs,
    500,
  );
  return Date.now();
}

function openDb(url: string): Database {
  const db = createDatabase(url, 3);
  db.pool.on('error', () => undefined); // idle connections dropped by a Postgres restart
  return db;
}

/** Brings the chaos services up, a fresh migrated and seeded database, a fresh topic. */
async function prepare(): Promise<{ kafka: Kafka; databaseUrl: string; topic: string; groupId: string }> {
  const t = Date.now();
  await servicesUp();
  const databaseUrl = await recreateSeededDatabase(CHAOS_ADMIN_URL, CHAOS_DATABASE);
  const kafka = chaosKafka();
  const topic = `chaos.${caseName}.${Date.now().toString(36)}`;
  await createTopics(kafka, topic);
  log(`services up, database ${CHAOS_DATABASE} migrated and seeded, topic ${topic} (${PARTITIONS} partitions) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return { kafka, databaseUrl, topic, groupId: `${topic}.group` };
}

function summarise(name: string, checks: Check[], recoveries: Recovery[], facts: Record<string, unknown>): CaseResult {
  for (const c of checks) log(`${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}`);
  for (const r of recoveries) log(`recovery ${JSON.stringify(r)}`);
  const result = { case: name, ok: checks.every((c) => c.ok), checks, recoveries, facts };
  console.log(JSON.stringify({ case: name, ok: result.ok, failed: checks.filter((c) => !c.ok).map((c) => c.name), recoveries, ...facts }));
  return result;
}

/**
 * The shape every ingest case shares: one ingestor consuming, the paced publisher, the case's
 * faults while both run, then catch-up and the checks.
 */
async function ingestCase(
  name: string,
  messagesTarget: number,
  inject: (ctx: Ctx) => Promise<void>,
  extraChecks: (ctx: Ctx) => Check[] = () => [],
): Promise<CaseResult> {
  const { kafka, databaseUrl, topic, groupId } = await prepare();
  const plan = planMessages(Math.round(messagesTarget / 1.06), ACCOUNTS);
  const pool = new IngestorPool({ databaseUrl, brokers: CHAOS_BROKERS, topic, groupId }, log);
  const db = openDb(databaseUrl);
  const facts: Record<string, unknown> = { messages: plan.length, rate_per_s: RATE };
  let monitor: Monitor | undefined;
  try {
    const first = pool.start();
    await waitUntil('the first ingestor to consume', async () => first.app.output().includes('"msg":"consuming"'), 120_000);
    log(`publishing ${plan.length} messages at ${RATE}/s (~${Math.round(plan.length / RATE)} s)`);
    const publishing = publishPaced(kafka, topic, plan, RATE, log);
    monitor = new Monitor(kafka, databaseUrl, topic, publishing.state, log, () => pool.members.length);
    monitor.start();
    const ctx: Ctx = { kafka, topic, groupId, databaseUrl, pool, monitor, publisher: publishing.state, facts };
    await inject(ctx);
    await publishing.finished;
    log(`published everything (${publishing.state.failedSends} failed sends retried); waiting for ingestion to catch up`);
    const caughtUpAt = await waitCaughtUp(kafka, db, topic, groupId, 300_000);
    facts.caught_up_after_last_publish_s = Math.round((caughtUpAt - publishing.state.finishedAt) / 100) / 10;
    await sleep(2000); // anything still redelivered must be a no-op
    await monitor.stop();

    const now = new Date();
    const messages = await readWholeTopic(kafka, topic);
    const dlq = await readWholeTopic(kafka, `${topic}.dlq`);
    const expected = expectedFrom(messages, now);
    const checks = [
      ...checkTopicAgainstPlan(messages, plan, expected, now),
      ...(await checkStored(db, kafka, topic, groupId, expected, dlq)),
      ...extraChecks(ctx),
      {
        name: 'no ingestor exited on its own (outages are ridden out in-process)',
        ok: pool.unexpectedExits.length === 0,
        detail: pool.unexpectedExits.length === 0 ? 'none' : pool.unexpectedExits.map((e) => `${e.name} exit ${e.code}: ${e.output.split('\n').filter(Boolean).slice(-3).join(' / ').slice(0, 300)}`).join(' | '),
      },
    ];
    facts.unexpected_ingestor_exits = pool.unexpectedExits.length;
    facts.ingestor_processes_started = pool.all.length;
    const faults = monitor.faults;
    const recoveries = faults.map((f, i) => monitor!.recovery(f, RATE, faults[i + 1]?.at));
    return summarise(name, checks, recoveries, facts);
  } finally {
    await monitor?.stop();
    await pool.close();
    await db.close();
  }
}

/** Waits until `n` messages of the plan have been acknowledged. */
async function publishedAtLeast(ctx: Ctx, n: number): Promise<void> {
  while (ctx.publisher.acked < n && !ctx.publisher.done) await sleep(50);
}

const CASES: Record<string, () => Promise<CaseResult>> = {
  'kafka-kill': () =>
    ingestCase('kafka-kill', RATE * 45, async (ctx) => {
      await publishedAtLeast(ctx, RATE * 15);
      const f = ctx.monitor.fault('broker SIGKILL');
      const pid = await killBroker();
      log(`broker pid ${pid} killed; restarting it in 3 s (a supervisor's restart delay)`);
      await sleep(3000);
      await startBroker();
      f.backAt = Date.now();
      log(`broker answering again ${((f.backAt - f.at) / 1000).toFixed(1)} s after the kill`);
    }),

  'postgres-restart': () =>
    ingestCase('postgres-restart', RATE * 45, async (ctx) => {
      for (const at of [12, 28]) {
        await publishedAtLeast(ctx, RATE * at);
        const f: Fault = ctx.monitor.fault('postgres restart -m fast');
        await restartPostgres();
        f.backAt = Date.now();
        log(`postgres restarted in ${((f.backAt - f.at) / 1000).toFixed(1)} s`);
      }
    }),

  'ingestor-kill': () =>
    ingestCase(
      'ingestor-kill',
      RATE * 85,
      async (ctx) => {
        await publishedAtLeast(ctx, RATE * 10);
        const until = Date.now() + 60_000;
        const intervals = [3000, 5000, 4000, 6000, 3500, 4500];
        let i = 0;
        let kills = 0;
        while (Date.now() < until) {
          await sleep(intervals[i++ % intervals.length]);
          const victim = ctx.pool.members[0];
          if (!victim) continue;
          const f = ctx.monitor.fault(`SIGKILL ${victim.name}`);
          await ctx.pool.kill(victim);
          ctx.pool.start();
          f.backAt = Date.now();
          kills++;
        }
        ctx.facts.kills = kills;
      },
    ),

  rebalance: () =>
    ingestCase(
      'rebalance',
      RATE * 50,
      async (ctx) => {
        await publishedAtLeast(ctx, RATE * 12);
        const grow = ctx.monitor.fault('group 1 -> 3 members');
        const added = [ctx.pool.start(), ctx.pool.start()];
        await waitUntil('both new members to consume', async () => added.every((m) => m.app.output().includes('"msg":"consuming"')), 120_000);
        grow.backAt = Date.now();
        await waitUntil('all three members to store chunks', async () => ctx.pool.membersThatStored().length >= 3, 90_000).catch((err) => log(String(err)));
        await publishedAtLeast(ctx, RATE * 32);
        const shrink = ctx.monitor.fault('group 3 -> 1 members (SIGTERM)');
        const codes = await Promise.all(added.map((m) => ctx.pool.stop(m)));
        shrink.backAt = Date.now();
        ctx.facts.sigterm_exit_codes = codes;
      },
      (ctx) => {
        const stored = ctx.pool.membersThatStored();
        const codes = (ctx.facts.sigterm_exit_codes as (number | string)[]) ?? [];
        return [
          { name: 'every member of the grown group stored chunks', ok: stored.length >= 3, detail: `members that stored chunks: ${stored.join(', ')}` },
          { name: 'members leaving with SIGTERM exit 0', ok: codes.length === 2 && codes.every((c) => c === 0), detail: `exit codes ${codes.join(', ')}` },
        ];
      },
    ),

  'backup-restore': backupRestore,
};

// ---------------------------------------------------------------------------------------------
// backup-restore
// ---------------------------------------------------------------------------------------------

const PG_ENV = { ...process.env, PGPASSWORD: 'tokenmeter' };
const PG_CONN = ['-h', '127.0.0.1', '-p', String(CHAOS_PG_PORT), '-U', 'tokenmeter'];

async function pgDump(database: string, file: string): Promise<{ seconds: number; bytes: number }> {
  const t = Date.now();
  await execFileAsync('pg_dump', [...PG_CONN, '-Fc', '-d', database, '-f', file], { env: PG_ENV });
  return { seconds: (Date.now() - t) / 1000, bytes: statSync(file).size };
}

async function pgRestore(file: string, database: string): Promise<number> {
  const admin = new Client({ connectionString: CHAOS_ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${database} TEMPLATE template0`);
  await admin.end();
  const t = Date.now();
  await execFileAsync('pg_restore', [...PG_CONN, '-d', database, '--exit-on-error', '--no-owner', file], { env: PG_ENV });
  return (Date.now() - t) / 1000;
}

/** md5 of every table's rows (sorted) and every sequence's position: equal means the same data. */
async function fingerprint(db: Database): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const { rows: tables } = await db.pool.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
  for (const { t } of tables) {
    const { rows } = await db.pool.query(`SELECT count(*)::text AS n, coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') AS h FROM ${t} x`);
    out[t] = `${rows[0].n} rows ${rows[0].h}`;
  }
  const { rows: seqs } = await db.pool.query("SELECT sequencename, coalesce(last_value, 0)::text AS v FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1");
  for (const s of seqs) out[`sequence ${s.sequencename}`] = s.v;
  return out;
}

/** The project's reconciliation (libs/invoicing) for every month the events touch. */
async function reconcile(db: Database): Promise<unknown[]> {
  const { rows } = await db.pool.query<{ p: string }>("SELECT DISTINCT to_char(date_trunc('month', occurred_at, 'UTC'), 'YYYY-MM') AS p FROM usage_events ORDER BY 1");
  const service = new ReconciliationService(new ReconciliationRepository(db.pool), undefined);
  const reports = [];
  for (const { p } of rows) reports.push(await service.reconcile(p, { withStripe: false }));
  return reports;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function backupRestore(): Promise<CaseResult> {
  const { kafka, databaseUrl, topic, groupId } = await prepare();
  const plan: PlannedMessage[] = planMessages(40_000, ACCOUNTS);
  const pool = new IngestorPool({ databaseUrl, brokers: CHAOS_BROKERS, topic, groupId }, log);
  const db = openDb(databaseUrl);
  const dir = os.tmpdir();
  const midFile = path.join(dir, `tokenmeter-chaos-mid-${process.pid}.dump`);
  const fullFile = path.join(dir, `tokenmeter-chaos-full-${process.pid}.dump`);
  const facts: Record<string, unknown> = { messages: plan.length };
  const checks: Check[] = [];
  const opened: Database[] = [db];
  let resumed: IngestorPool | undefined;
  try {
    const first = pool.start();
    await waitUntil('the ingestor to consume', async () => first.app.output().includes('"msg":"consuming"'), 120_000);
    const rate = RATE * 2;
    log(`publishing ${plan.length} messages at ${rate}/s while the ingestor stores them`);
    const publishing = publishPaced(kafka, topic, plan, rate, log);
    while (publishing.state.acked < plan.length / 2) await sleep(50);

    // 1. An online backup, taken while events are being written.
    const mid = await pgDump(CHAOS_DATABASE, midFile);
    log(`pg_dump -Fc mid-stream: ${(mid.bytes / 1e6).toFixed(1)} MB in ${mid.seconds.toFixed(1)} s`);
    facts.dump_mid_stream = { seconds: mid.seconds, megabytes: Math.round(mid.bytes / 1e5) / 10 };

    await publishing.finished;
    await waitCaughtUp(kafka, db, topic, groupId, 180_000);
    await pool.close();

    // 2. A backup of the loaded, quiet database.
    const full = await pgDump(CHAOS_DATABASE, fullFile);
    log(`pg_dump -Fc quiesced: ${(full.bytes / 1e6).toFixed(1)} MB in ${full.seconds.toFixed(1)} s`);
    const now = new Date();
    const messages = await readWholeTopic(kafka, topic);
    const dlq = await readWholeTopic(kafka, `${topic}.dlq`);
    const expected = expectedFrom(messages, now);
    checks.push(...checkTopicAgainstPlan(messages, plan, expected, now));
    checks.push(...(await checkStored(db, kafka, topic, groupId, expected, dlq)).map((c) => ({ ...c, name: `original: ${c.name}` })));

    const restoreDb = `${CHAOS_DATABASE}_restore`;
    const restoreSeconds = await pgRestore(fullFile, restoreDb);
    log(`pg_restore of the quiesced dump into ${restoreDb}: ${restoreSeconds.toFixed(1)} s`);
    facts.dump_quiesced = { seconds: full.seconds, megabytes: Math.round(full.bytes / 1e5) / 10, restore_seconds: restoreSeconds };
    const restored = openDb(chaosDatabaseUrl(restoreDb));
    opened.push(restored);
    const [fa, fb] = [await fingerprint(db), await fingerprint(restored)];
    const differing = Object.keys({ ...fa, ...fb }).filter((k) => fa[k] !== fb[k]);
    checks.push({ name: 'restored (quiesced dump): every table and sequence identical', ok: differing.length === 0, detail: differing.length === 0 ? `${Object.keys(fa).length} tables/sequences identical (usage_events ${fa.usage_events?.split(' ')[0]} rows)` : `differ: ${differing.join(', ')}` });
    const [ra, rb] = [await reconcile(db), await reconcile(restored)];
    const mismatched = (ra as { mismatched_accounts: number }[]).reduce((n, r) => n + r.mismatched_accounts, 0);
    checks.push({ name: 'reconciliation: original and restored reports identical, no mismatch', ok: sameJson(ra, rb) && mismatched === 0, detail: `${(ra as { accounts: number }[]).map((r) => r.accounts).join('+')} accounts, ${mismatched} mismatched in the original, reports ${sameJson(ra, rb) ? 'identical' : 'DIFFER'}` });
    checks.push(...(await checkStored(restored, null, topic, null, expected, null)).map((c) => ({ ...c, name: `restored: ${c.name}` })));

    // 3. The mid-stream backup: a consistent snapshot (events, rollups and stored progress agree),
    //    and resuming from ITS stored progress converges to exactly the original totals.
    const midDb = `${CHAOS_DATABASE}_restore_mid`;
    const midRestoreSeconds = await pgRestore(midFile, midDb);
    const restoredMid = openDb(chaosDatabaseUrl(midDb));
    opened.push(restoredMid);
    const { rows: progress } = await restoredMid.pool.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset::text FROM ingest_progress WHERE topic = $1', [topic]);
    const upTo = new Map(progress.map((r) => [r.partition, BigInt(r.next_offset)]));
    const snapshotExpected = expectedFrom(messages, now, upTo);
    log(`mid-stream dump restored in ${midRestoreSeconds.toFixed(1)} s: ${snapshotExpected.events.size} of ${expected.events.size} events by its stored progress`);
    (facts.dump_mid_stream as Record<string, unknown>).restore_seconds = midRestoreSeconds;
    (facts.dump_mid_stream as Record<string, unknown>).events_in_snapshot = snapshotExpected.events.size;
    checks.push(...(await checkStored(restoredMid, null, topic, null, snapshotExpected, null)).map((c) => ({ ...c, name: `mid-stream snapshot: ${c.name}` })));

    // The operations procedure: a new group, its offsets set to the restored ingest_progress.
    const resumeGroup = `${groupId}.restored`;
    await withAdmin(kafka, (admin) =>
      admin.setOffsets({
        groupId: resumeGroup,
        topic,
        partitions: Array.from({ length: PARTITIONS }, (_, p) => ({ partition: p, offset: (upTo.get(p) ?? 0n).toString() })),
      }),
    );
    const t = Date.now();
    resumed = new IngestorPool({ databaseUrl: chaosDatabaseUrl(midDb), brokers: CHAOS_BROKERS, topic, groupId: resumeGroup }, log);
    resumed.start();
    await waitCaughtUp(kafka, restoredMid, topic, resumeGroup, 180_000);
    facts.resume_from_mid_stream_snapshot_s = (Date.now() - t) / 1000;
    await resumed.close();
    checks.push(...(await checkStored(restoredMid, kafka, topic, resumeGroup, expected, null)).map((c) => ({ ...c, name: `mid-stream snapshot resumed: ${c.name}` })));
    const rc = await reconcile(restoredMid);
    checks.push({ name: 'reconciliation: resumed snapshot identical to the original', ok: sameJson(ra, rc), detail: sameJson(ra, rc) ? 'per-account raw events, raw and rollup totals identical' : 'reports DIFFER' });
    return summarise('backup-restore', checks, [], facts);
  } finally {
    await pool.close();
    await resumed?.close();
    for (const d of opened) await d.close();
    rmSync(midFile, { force: true });
    rmSync(fullFile, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'all';
  const names = which === 'all' ? Object.keys(CASES) : [which];
  for (const n of names) if (!CASES[n]) throw new Error(`unknown case ${n}; one of: all, ${Object.keys(CASES).join(', ')}`);
  const results: CaseResult[] = [];
  for (const n of names) {
    caseName = n;
    caseStarted.at = Date.now();
    try {
      results.push(await CASES[n]());
    } catch (err) {
      log(`ERROR ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      results.push({ case: n, ok: false, checks: [{ name: 'case ran to the end', ok: false, detail: String(err) }], recoveries: [], facts: {} });
    } finally {
      await servicesDown().catch((err) => log(`could not stop the chaos services: ${String(err)}`));
      log(`case took ${((Date.now() - caseStarted.at) / 1000).toFixed(0)} s`);
    }
  }
  caseName = 'chaos';
  const failed = results.filter((r) => !r.ok);
  log(`${results.length - failed.length}/${results.length} cases passed${failed.length ? `; FAILED: ${failed.map((r) => r.case).join(', ')}` : ''}`);
  process.exit(failed.length === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
