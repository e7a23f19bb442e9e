/**
 * The gateway's authorize check under load: latency and the highest sustained rate, alone and
 * while usage is being ingested.
 *
 *   npm run bench:authorize [-- --accounts 1000] [--rates 1000,2000,5000] [--duration 10] [--ingest-rate 5000] [--connections 32]
 *                           [--port-mode fast|nest] [--semi-space-mb 0] [--closed-loop yes|no] [--pin-api no|yes]
 *                           [--api compiled|ts-node] [--priority normal|rt]
 *
 * --port-mode fast (the default) sends the checks to the lean listener (AUTHORIZE_PORT, no
 * Express/Nest), nest to the same route on the API's own port. --semi-space-mb N starts the API
 * with --max-semi-space-size=N (V8's young generation; 0: Node's default). --closed-loop no skips
 * the closed loops: their checks (up to ~300,000 in 10 s on the lean port) all stay held for the hold TTL (30 s
 * here; nothing settles them while alone), so the open loops after them run on a few hundred
 * thousand holds being expired and collected, far more than a gateway at that rate keeps in flight.
 * --pin-api yes gives the API process the last CPU to itself (taskset) and puts this process, the
 * ingest child and Postgres on the others: an authorize process on cores of its own.
 * --api compiled (the default) runs dist/ (built first, `npm run build`) as the production image
 * does; ts-node the sources. --priority rt puts the main threads of the API and of this process
 * (the gateway's side) in SCHED_FIFO (chrt): the ingest child and Postgres can no longer take the
 * CPU from them. It stands for the API and the gateway each on cores of their own, which this
 * 2-core box cannot give four processes; their V8 helper threads stay at normal priority.
 *
 * 1. recreates a scratch database, tokenmeter_bench_authorize, with the price book and --accounts
 *    accounts, each with a hard monthly budget, every tenth also a per-key and a per-model one,
 *    every fiftieth nearly spent (so 402s are part of the mix); their windows hold some spend;
 * 2. starts the real API (apps/api/src/main.ts) as its own process;
 * 3. phase "alone": a closed loop of --connections keep-alive connections for --duration s (the
 *    highest sustained rate), then an open loop at each of --rates checks/s for --duration s
 *    (latency); before that, the check itself in this process (SpendAuthorizer.authorize over the
 *    same state, no HTTP): microseconds per call;
 *    each check is a new request_id, a random account, key and model, with max_output_tokens;
 * 4. phase "while ingesting": the same two runs while a child process ingests --ingest-rate events/s
 *    (UsageIngestor.ingest in chunks of 500, bench:ingest's events, occurred_at now, the same
 *    accounts; each carries the account and request_id of a check that was allowed, when there is
 *    one, so holds settle through the real path: NOTIFY, the settle statement, release);
 * 5. prints one JSON line per run: checks, rate, p50/p99/p99.9/max in ms from send to answer (open
 *    loop: also p99 from the instant each check was due, so a queue building up cannot hide),
 *    status counts, and for ingest the events stored per second. With the lean port, also the
 *    server's own view from its histogram (tokenmeter_authorize_port_request_duration_seconds,
 *    scraped from /metrics before and after the run): `server_p99_ms_at_most` is the upper bound
 *    of the bucket holding the 99th percentile, from the request's headers being parsed to the
 *    last byte handed to the socket. The difference from p99_ms is time the request waited for the
 *    API process to get a CPU (or in this process), not time spent answering it.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { createDatabase, PriceBookRepository, SpendStateRepository, UsageEventsRepository } from '@tokenmeter/db';
import { SpendAuthorizer, SpendStateCache } from '@tokenmeter/limits';
import { loadConfig } from '@tokenmeter/config';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';
import { apiBuildArg, freePort, startApi, stopApi } from './api-process';
import { integerListArg, numberArg, stringArg } from './args';
import { recreateSeededDatabase } from './scratch-database';
import { makeEvent } from './usage-events';

const ACCOUNTS = Math.floor(numberArg('accounts', 1000));
const RATES = integerListArg('rates', [1000, 2000, 5000]);
const DURATION_S = numberArg('duration', 10);
const INGEST_RATE = Math.floor(numberArg('ingest-rate', 5000));
const CONNECTIONS = Math.floor(numberArg('connections', 32));
const PORT_MODE = stringArg('port-mode', 'fast', /^(fast|nest)$/) as 'fast' | 'nest';
const SEMI_SPACE_MB = Number(stringArg('semi-space-mb', '0', /^\d{1,4}$/));
const CLOSED_LOOP = stringArg('closed-loop', 'yes', /^(yes|no)$/) === 'yes';
// --pin-api yes: the API gets the last CPU to itself; this process, the ingest child and the
// Postgres server (every process of the OS user `postgres`, restored at the end) the others. It
// stands for an authorize process on cores of its own, the way it would be deployed.
const PIN_API = stringArg('pin-api', 'no', /^(yes|no)$/) === 'yes';
const RT_PRIORITY = stringArg('priority', 'normal', /^(normal|rt)$/) === 'rt';
const BENCH_DB = 'tokenmeter_bench_authorize';
const ADMIN_URL = loadConfig().databaseUrl;
const TOKEN = 'bench-authorize-ingest-token-0123456789';
const MODELS = ['deepseek-r1', 'deepseek-v3', 'gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4'];

const log = (msg: string) => process.stderr.write(`[bench:authorize] ${msg}\n`);

const CPU_COUNT = os.cpus().length;
const API_CPU = String(CPU_COUNT - 1);
const OTHER_CPUS = CPU_COUNT > 2 ? `0-${CPU_COUNT - 2}` : '0';
const ALL_CPUS = `0-${CPU_COUNT - 1}`;
/** Sets a process's CPU affinity, all its threads (taskset from util-linux). */
const pin = (pid: number, cpus: string) => execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
const postgresPids = () =>
  execFileSync('pgrep', ['-u', 'postgres'], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
function pinPostgres(cpus: string): void {
  for (const pid of postgresPids()) {
    try {
      pin(pid, cpus);
    } catch {
      // A backend that exited between pgrep and taskset.
    }
  }
}
const account = (i: number) => `acct_${String(i).padStart(5, '0')}`;

async function seed(url: string): Promise<void> {
  const db = createDatabase(url, 2);
  try {
    await db.pool.query(`INSERT INTO accounts (id, name) SELECT 'acct_' || lpad(i::text, 5, '0'), 'bench ' || i FROM generate_series(0, $1 - 1) i`, [ACCOUNTS]);
    await db.pool.query(
      `INSERT INTO api_keys (id, prefix, secret_hash, role, account_id)
       SELECT 'key_' || lpad(i::text, 5, '0'), 'tm_live_' || lpad(i::text, 8, '0'), md5(i::text), 'account', 'acct_' || lpad(i::text, 5, '0')
       FROM generate_series(0, $1 - 1) i`,
      [ACCOUNTS],
    );
    // Budgets as the admin API would leave them (counts_from = the window's start).
    await db.pool.query(
      `INSERT INTO budgets (id, account_id, api_key_id, model, limit_usd, time_window, thresholds, enforce, counts_from)
       SELECT 'bud_acct_' || i, 'acct_' || lpad(i::text, 5, '0'), NULL, NULL, CASE WHEN i % 50 = 0 THEN 0.01 ELSE 1000000 END,
              'month', '{50,80,100}'::numeric[], 'hard', date_trunc('month', now(), 'UTC') FROM generate_series(0, $1 - 1) i
       UNION ALL
       SELECT 'bud_key_' || i, 'acct_' || lpad(i::text, 5, '0'), 'key_' || lpad(i::text, 5, '0'), NULL, 500000, 'day', '{80}'::numeric[], 'hard',
              date_trunc('day', now(), 'UTC') FROM generate_series(0, $1 - 1, 10) i
       UNION ALL
       SELECT 'bud_model_' || i, 'acct_' || lpad(i::text, 5, '0'), NULL, 'deepseek-r1', 100000, 'total', '{100}'::numeric[], 'soft', 'epoch'::timestamptz
       FROM generate_series(0, $1 - 1, 10) i`,
      [ACCOUNTS],
    );
    await db.pool.query(
      `INSERT INTO budget_windows (budget_id, window_start, spend_usd, version)
       SELECT id, counts_from, CASE WHEN limit_usd < 1 THEN limit_usd - 0.0001 ELSE 12.3456789 END, 1 FROM budgets`,
    );
  } finally {
    await db.close();
  }
}

interface RunResult {
  run: string;
  checks: number;
  seconds: number;
  rate_per_s: number;
  p50_ms: number;
  p99_ms: number;
  p99_9_ms: number;
  max_ms: number;
  statuses: Record<string, number>;
  errors: number;
  load_avg_1m: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 1000) / 1000;
}

/** The lean port's histogram as cumulative counts per bucket bound (seconds), summed over status codes. */
async function leanPortHistogram(apiPort: number): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
  const buckets = new Map<number, number>();
  const line = /^tokenmeter_authorize_port_request_duration_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)$/gm;
  for (const m of text.matchAll(line)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** The server-side percentiles of the requests between two scrapes, as bucket upper bounds in ms. */
function serverPercentiles(before: Map<number, number>, after: Map<number, number>): Record<string, number | null> {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const atMost = (p: number) => {
    const le = bounds.find((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0) >= (p / 100) * total);
    return le === undefined || le === Infinity ? null : le * 1000;
  };
  return { server_requests: total, server_p50_ms_at_most: atMost(50), server_p99_ms_at_most: atMost(99), server_p99_9_ms_at_most: atMost(99.9) };
}

class Checker {
  private seq = 0;
  private readonly agent: http.Agent;
  /** request_ids allowed, for the ingest child to send events for (so holds settle). */
  readonly allowed: string[] = [];
  feedAllowed = false;

  constructor(private readonly port: number, connections: number) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  }

  /** One check; resolves with its status (0 on a transport error). */
  check(): Promise<number> {
    const n = this.seq++;
    const a = Math.floor(Math.random() * ACCOUNTS);
    const requestId = `bench_${process.pid}_${n}`;
    const body = JSON.stringify({
      account_id: account(a),
      api_key_id: Math.random() < 0.5 ? `key_${String(a).padStart(5, '0')}` : null,
      model: MODELS[n % MODELS.length],
      request_id: requestId,
      estimated_input_tokens: 500 + (n % 1500),
      max_output_tokens: 256 + (n % 768),
    });
    return new Promise((resolve) => {
      const req = http.request(
        {
          agent: this.agent,
          host: '127.0.0.1',
          port: this.port,
          method: 'POST',
          path: '/v1/spend/authorize',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${TOKEN}` },
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            if (res.statusCode === 200 && this.feedAllowed && this.allowed.length < 200_000) this.allowed.push(`${account(a)} ${requestId}`);
            resolve(res.statusCode ?? 0);
          });
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });
  }

  /** Closed loop: `connections` checks in flight at all times, for `seconds`. */
  async closedLoop(name: string, connections: number, seconds: number): Promise<RunResult> {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const end = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          const status = await this.check();
          latencies.push(performance.now() - t0);
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      }),
    );
    return summarise(name, latencies, statuses, (performance.now() - started) / 1000);
  }

  /** Open loop: a check due every 1/rate s whatever the answers do; latency counts from when it was due. */
  async openLoop(name: string, rate: number, seconds: number): Promise<RunResult & { p99_from_due_ms: number; p99_9_from_due_ms: number }> {
    const latencies: number[] = [];
    const fromDue: number[] = [];
    const statuses: Record<string, number> = {};
    const total = Math.floor(rate * seconds);
    const started = performance.now();
    const pending: Promise<void>[] = [];
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const due = Math.min(total, Math.floor(((now - started) / 1000) * rate) + 1);
        while (sent < due) {
          const dueAt = started + (sent * 1000) / rate;
          sent++;
          const sentAt = performance.now();
          pending.push(
            this.check().then((status) => {
              const doneAt = performance.now();
              latencies.push(doneAt - sentAt);
              fromDue.push(doneAt - dueAt);
              statuses[status] = (statuses[status] ?? 0) + 1;
            }),
          );
        }
        // A 1 ms timer, not setImmediate: a spinning client would take a core from the API and Postgres.
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    await Promise.all(pending);
    const due = Float64Array.from(fromDue).sort();
    return {
      ...summarise(name, latencies, statuses, (performance.now() - started) / 1000),
      // From the instant each check was due (the timer fires up to ~1 ms late): a queue that builds up shows here.
      p99_from_due_ms: percentile(due, 99),
      p99_9_from_due_ms: percentile(due, 99.9),
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

function summarise(run: string, latencies: number[], statuses: Record<string, number>, seconds: number): RunResult {
  const sorted = Float64Array.from(latencies).sort();
  return {
    run,
    checks: latencies.length,
    seconds: Math.round(seconds * 100) / 100,
    rate_per_s: Math.round(latencies.length / seconds),
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    p99_9_ms: percentile(sorted, 99.9),
    max_ms: percentile(sorted, 100),
    statuses,
    errors: statuses['0'] ?? 0,
    // The box is shared: how busy it was over the last minute, read at the end of the run.
    load_avg_1m: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

/** The check alone: SpendAuthorizer.authorize on the loaded state, as the route calls it, timed per call. */
async function inProcess(url: string): Promise<Record<string, unknown>> {
  const db = createDatabase(url, 2);
  const repository = new SpendStateRepository(db.pool);
  const cache = new SpendStateCache(repository, { databaseUrl: url });
  const prices = new PriceBookCache(new PriceBookRepository(db.pool));
  const authorizer = new SpendAuthorizer(cache, repository, () => prices.current(), {
    holdTtlMs: 30_000,
    holdGraceMs: 60_000,
    fallbackMaxOutputTokens: 32_768,
    clockSkewMs: 60_000,
    maxRetryAfterSeconds: 5,
    topic: 'gateway.usage.v1',
    topicPartitions: 6,
  });
  try {
    await authorizer.start();
    await cache.start();
    const calls = 200_000;
    const latencies = new Float64Array(calls);
    const statuses: Record<string, number> = {};
    for (let n = 0; n < calls; n++) {
      const a = n % ACCOUNTS;
      const t0 = performance.now();
      const answer = authorizer.authorize({
        accountId: account(a),
        apiKeyId: n % 2 === 0 ? `key_${String(a).padStart(5, '0')}` : null,
        model: MODELS[n % MODELS.length],
        requestId: `inproc_${n}`,
        estimatedInputTokens: 500 + (n % 1500),
        maxOutputTokens: 256 + (n % 768),
      });
      latencies[n] = performance.now() - t0;
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
    }
    latencies.sort();
    const us = (p: number) => Math.round(latencies[Math.min(calls - 1, Math.ceil((p / 100) * calls) - 1)] * 10_000) / 10;
    return { run: 'SpendAuthorizer.authorize (no HTTP)', calls, p50_us: us(50), p99_us: us(99), p99_9_us: us(99.9), max_us: us(100), holds: authorizer.holds.size, statuses };
  } finally {
    await authorizer.stop();
    await cache.stop();
    await db.close();
  }
}

/** The ingest child: --ingest-rate events/s, chunks of 500, until told to stop; reports events stored. */
async function ingestWorker(url: string): Promise<void> {
  const db = createDatabase(url, 2);
  const ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
  const settleIds: string[] = [];
  process.on('message', (m: { allowed?: string[]; stop?: boolean }) => {
    if (m.allowed) settleIds.push(...m.allowed);
    if (m.stop) stopping = true;
  });
  let stopping = false;
  let i = 0;
  let stored = 0;
  const chunk = 500;
  const started = performance.now();
  while (!stopping) {
    const now = Date.now();
    const messages = Array.from({ length: chunk }, () => {
      const raw = makeEvent(i++, now - 1000, 1, ACCOUNTS);
      raw.event_id = `bench_ingest_${process.pid}_${i}`;
      raw.occurred_at = new Date(now).toISOString();
      // bench:ingest's accounts are acct_<n>; this data set's are acct_<5 digits>, with one key each.
      const n = Number(String(raw.account_id).slice(5));
      raw.account_id = account(n);
      raw.api_key_id = `key_${String(n).padStart(5, '0')}`;
      // As a gateway would: the allowed checks' events, as they finish (a few hundred ms later).
      const settle = settleIds.shift();
      if (settle) [raw.account_id, raw.request_id] = settle.split(' ');
      return { value: raw, key: null };
    });
    const outcomes = await ingestor.ingest(messages, 'http');
    stored += outcomes.filter((o) => o.status === 'accepted').length;
    if (i === chunk) process.send!({ ingesting: true });
    // Pace to INGEST_RATE: wait until this many events are due.
    const dueMs = (i / INGEST_RATE) * 1000 - (performance.now() - started);
    if (dueMs > 0) await new Promise((r) => setTimeout(r, dueMs));
  }
  process.send!({ stored, seconds: (performance.now() - started) / 1000 });
  await db.close();
  // The IPC channel (process.on('message')) would keep both this child and the parent alive.
  process.disconnect();
}

async function main(): Promise<void> {
  log(`${os.cpus().length} CPUs; database ${BENCH_DB}; ${ACCOUNTS} accounts; port mode ${PORT_MODE}; semi-space ${SEMI_SPACE_MB || 'default'}`);
  const url = await recreateSeededDatabase(ADMIN_URL, BENCH_DB);
  await seed(url);
  console.log(JSON.stringify({ phase: 'in process', ...(await inProcess(url)) }));
  const port = await freePort();
  const authorizePort = await freePort();
  const env: Record<string, string> = { TOKENMETER_INGEST_TOKEN: TOKEN, LOG_LEVEL: 'warn', AUTHORIZE_HOLD_TTL_SECONDS: '30', AUTHORIZE_PORT: String(authorizePort) };
  if (SEMI_SPACE_MB > 0) env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=${SEMI_SPACE_MB}`.trim();
  const compiled = apiBuildArg(log);
  const api = await startApi({ databaseUrl: url, port, env, compiled });
  // SCHED_FIFO for the main threads only (not -a): with the V8 helper threads in it as well, a
  // concurrent GC thread runs unpreempted beside the main thread and the tail was no better.
  if (RT_PRIORITY) for (const pid of [api.pid!, process.pid]) execFileSync('chrt', ['-f', '-p', '10', String(pid)]);
  if (PIN_API) {
    if (CPU_COUNT < 2) throw new Error('--pin-api needs at least 2 CPUs');
    pin(api.pid!, API_CPU);
    pin(process.pid, OTHER_CPUS);
    pinPostgres(OTHER_CPUS);
    log(`pinned: the API to CPU ${API_CPU}; this process, the ingest child and Postgres to CPU ${OTHER_CPUS}`);
  }
  const checker = new Checker(PORT_MODE === 'fast' ? authorizePort : port, CONNECTIONS);
  console.log(JSON.stringify({ phase: 'setup', port_mode: PORT_MODE, api: compiled ? 'compiled' : 'ts-node', priority: RT_PRIORITY ? 'rt' : 'normal', pin_api: PIN_API, semi_space_mb: SEMI_SPACE_MB || null, closed_loop: CLOSED_LOOP, load_avg: os.loadavg().map((l) => Math.round(l * 100) / 100) }));
  const results: Record<string, unknown>[] = [];
  // The lean port's own histogram around a run; the Nest route's is per route and not read here.
  const serverSide = async <T extends object>(run: () => Promise<T>): Promise<T> => {
    if (PORT_MODE !== 'fast') return run();
    const before = await leanPortHistogram(port);
    const result = await run();
    return { ...result, ...serverPercentiles(before, await leanPortHistogram(port)) };
  };
  const report = (r: Record<string, unknown>) => {
    results.push(r);
    console.log(JSON.stringify(r));
  };
  try {
    log('warm-up: 3 s closed loop');
    await checker.closedLoop('warm-up', 8, 3);

    if (CLOSED_LOOP) {
      log(`alone: closed loop, ${CONNECTIONS} connections, ${DURATION_S} s`);
      report({ phase: 'alone', ...(await serverSide(() => checker.closedLoop('max rate (closed loop)', CONNECTIONS, DURATION_S))) });
    }
    for (const rate of RATES) {
      log(`alone: open loop at ${rate}/s, ${DURATION_S} s`);
      report({ phase: 'alone', ...(await serverSide(() => checker.openLoop(`${rate}/s (open loop)`, rate, DURATION_S))) });
    }

    log(`while ingesting ${INGEST_RATE} events/s: starting the ingest process`);
    const worker: ChildProcess = fork(__filename, ['--ingest-worker', url, ...process.argv.slice(2)], {
      execArgv: ['-r', 'ts-node/register'],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
    });
    // Forked from a SCHED_FIFO thread it would inherit the policy: the ingest work stays normal.
    if (RT_PRIORITY) execFileSync('chrt', ['-o', '-a', '-p', '0', String(worker.pid)]);
    checker.feedAllowed = true;
    const feed = setInterval(() => {
      if (checker.allowed.length > 0) worker.send({ allowed: checker.allowed.splice(0, 5000) });
    }, 200);
    // Measured only once the child ingests (loading it takes seconds of CPU), then 2 s to settle.
    await new Promise<void>((resolve) => {
      const onMessage = (m: { ingesting?: boolean }) => {
        if (!m.ingesting) return;
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('message', onMessage);
    });
    await new Promise((r) => setTimeout(r, 2000));
    if (CLOSED_LOOP) {
      log(`while ingesting: closed loop, ${CONNECTIONS} connections, ${DURATION_S} s`);
      report({ phase: 'while ingesting', ...(await serverSide(() => checker.closedLoop('max rate (closed loop)', CONNECTIONS, DURATION_S))) });
    }
    for (const rate of RATES) {
      log(`while ingesting: open loop at ${rate}/s, ${DURATION_S} s`);
      report({ phase: 'while ingesting', ...(await serverSide(() => checker.openLoop(`${rate}/s (open loop)`, rate, DURATION_S))) });
    }
    clearInterval(feed);
    const ingest = await new Promise<{ stored: number; seconds: number }>((resolve) => {
      worker.once('message', (m) => resolve(m as { stored: number; seconds: number }));
      worker.send({ stop: true });
    });
    report({ phase: 'while ingesting', run: 'ingest', events_stored: ingest.stored, seconds: Math.round(ingest.seconds), events_per_s: Math.round(ingest.stored / ingest.seconds) });
  } finally {
    checker.close();
    await stopApi(api);
    if (PIN_API) pinPostgres(ALL_CPUS);
  }
}

if (process.argv[2] === '--ingest-worker') {
  ingestWorker(process.argv[3]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
