/**
 * Dashboard API benchmark: p50/p99 and requests/s of the usage summary and the daily time series
 * of the largest account, for a month and/or a year, under concurrent load, over 10 million
 * events from 5,000 accounts (a month of them unless --months).
 *
 *   npm run bench:api [-- --events 10000000] [--accounts 5000] [--months 1] [--ranges month] [--concurrency 8]
 *                     [--seconds 20] [--reseed] [--database tokenmeter_bench_api] [--api compiled|ts-node]
 *
 * --ranges month,year: October 2026, and the 365 days ending with it (fill them: --months 12).
 * --concurrency 8,32: each range is measured at each of these client counts.
 * BENCH_API_ROOT=<another checkout>: the API under test is that checkout's (same data set), for
 * before/after pairs on one data set (bench/api-process.ts).
 *
 * 1. seeds (or reuses) the scratch data set of bench/api-dataset.ts (shared with bench:web);
 * 2. starts the real API (apps/api/src/main.ts) as its own process, LOG_LEVEL=info to /dev/null;
 * 3. for each range, concurrency and route: warm-up, then N concurrent keep-alive clients for a
 *    fixed time, as the largest account (worst case: the most rollup rows);
 * 4. prints one JSON line per (range, concurrency), with the CPU per request of the API process and
 *    of its Postgres backends (from /proc: Postgres must run on this machine) beside the latencies.
 */
import { type Agent, request } from 'node:http';
import os from 'node:os';
import { datasetArgs, datasetFacts, datasetJson, MONTH_END, MONTH_START, prepareDataset, YEAR_START } from './api-dataset';
import { apiBuildArg, apiRoot, freePort, startApi, stopApi } from './api-process';
import { CpuMeter } from './cpu-meter';
import { integerListArg, numberArg } from './args';
import { percentile, round2, timedKeepAliveLoop } from './http-load';

const CONCURRENCY = integerListArg('concurrency', [8]);
const SECONDS = numberArg('seconds', 20);
const WARMUP_SECONDS = 3;
const RANGES = { month: [MONTH_START, MONTH_END], year: [YEAR_START, MONTH_END] } as const;
const RANGE_NAMES = rangesArg();

const log = (msg: string) => process.stderr.write(`[bench:api] ${msg}\n`);
const DATASET = datasetArgs(log);
const API_COMPILED = apiBuildArg(log);

function rangesArg(): (keyof typeof RANGES)[] {
  const i = process.argv.indexOf('--ranges');
  const names = i < 0 ? ['month'] : (process.argv[i + 1] ?? '').split(',');
  if (names.some((n) => !(n in RANGES))) throw new Error(`--ranges must be a comma-separated list of ${Object.keys(RANGES).join(', ')}`);
  return names as (keyof typeof RANGES)[];
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

/** `concurrency` clients, each sending its next request as soon as the previous one is answered. */
async function load(concurrency: number, port: number, pathAndQuery: string, key: string, seconds: number): Promise<LoadResult> {
  const samples = await timedKeepAliveLoop(concurrency, seconds, async (agent) => ({ ok: (await get(agent, port, pathAndQuery, key).catch(() => 0)) === 200 }));
  return { latenciesMs: samples.map((s) => s.ms), errors: samples.filter((s) => !s.ok).length };
}

/**
 * Latency and requests/s depend on whatever else the machine runs; the CPU per request (API
 * process + its Postgres backends, from /proc) much less: it is what a quiet core would serve.
 */
async function measure(concurrency: number, port: number, name: string, pathAndQuery: string, key: string, cpu: CpuMeter) {
  await load(concurrency, port, pathAndQuery, key, WARMUP_SECONDS);
  const stop = await cpu.start();
  const { latenciesMs, errors } = await load(concurrency, port, pathAndQuery, key, SECONDS);
  const used = await stop();
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const perRequest = (ms: number | null) => (ms === null ? null : round2(ms / sorted.length));
  const result = {
    p50: round2(percentile(sorted, 50)),
    p99: round2(percentile(sorted, 99)),
    requests: sorted.length,
    errors,
    rps: Math.round(sorted.length / SECONDS),
    api_cpu_ms: perRequest(used.apiMs),
    postgres_cpu_ms: perRequest(used.postgresMs),
  };
  log(`${name}: ${JSON.stringify(result)}`);
  return result;
}

async function main(): Promise<void> {
  const { url, key } = await prepareDataset(DATASET);
  const port = await freePort();
  const api = await startApi({ databaseUrl: url, port, compiled: API_COMPILED });
  const cpu = new CpuMeter(api.pid!, url, DATASET.database);
  try {
    log(
      `API from ${apiRoot()} (${API_COMPILED ? 'compiled' : 'ts-node'}); ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per route; ${os.cpus().length} CPUs, ` +
        `load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    );
    for (const rangeName of RANGE_NAMES) {
      const [from, to] = RANGES[rangeName];
      const facts = await datasetFacts(url, undefined, from, to);
      const range = `from=${from}&to=${to}`;
      const check = await fetch(`http://127.0.0.1:${port}/v1/usage/summary?${range}`, { headers: { authorization: `Bearer ${key}` } });
      const body = (await check.json()) as { totals?: { requests?: number } };
      if (check.status !== 200 || body.totals?.requests !== facts.accountEvents) {
        throw new Error(`${rangeName} summary sanity check failed: ${check.status} ${JSON.stringify(body).slice(0, 300)}`);
      }
      for (const concurrency of CONCURRENCY) {
        log(`${rangeName} (${from} .. ${to}), ${concurrency} concurrent clients`);
        const summary = await measure(concurrency, port, 'summary', `/v1/usage/summary?${range}`, key, cpu);
        const timeseries = await measure(concurrency, port, 'timeseries (day)', `/v1/usage/timeseries?${range}&granularity=day`, key, cpu);
        console.log(
          JSON.stringify({
            ...datasetJson(DATASET, facts),
            api: API_COMPILED ? 'compiled' : 'ts-node',
            range: rangeName,
            summary_p50_ms: summary.p50,
            summary_p99_ms: summary.p99,
            timeseries_p50_ms: timeseries.p50,
            timeseries_p99_ms: timeseries.p99,
            concurrency,
            requests: summary.requests + timeseries.requests,
            errors: summary.errors + timeseries.errors,
            summary_rps: summary.rps,
            timeseries_rps: timeseries.rps,
            // CPU per request, ms: the API process (all threads) and its Postgres backends.
            summary_api_cpu_ms: summary.api_cpu_ms,
            summary_postgres_cpu_ms: summary.postgres_cpu_ms,
            timeseries_api_cpu_ms: timeseries.api_cpu_ms,
            timeseries_postgres_cpu_ms: timeseries.postgres_cpu_ms,
          }),
        );
      }
    }
  } finally {
    await stopApi(api);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
