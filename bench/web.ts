/**
 * Dashboard pages benchmark: p50/p99 time of the server-rendered pages (/app, /app/usage for a
 * month by day, /app/requests) under concurrent load, and the bytes each page costs on the wire
 * (gzip, as a browser asks for it), over the data set of bench:api (bench/api-dataset.ts: October
 * 2026, 10 million events from 5,000 accounts).
 *
 *   npm run bench:web [-- --concurrency 1,8] [--seconds 15] [--events 10000000] [--accounts 5000]
 *                     [--pages overview,usage,requests] [--reseed] [--database tokenmeter_bench_api]
 *   BENCH_CPU_PROF=dir npm run bench:web -- ...   # and a V8 CPU profile of the API process
 *
 * 1. seeds (or reuses) the data set;
 * 2. creates an account key for the largest account (acct_00000) and starts the real API as its own
 *    process, reading its request log (pino JSON on a pipe, LOG_LEVEL=info as in bench:api);
 * 3. signs in through the dashboard's own form (POST /app/sign-in) and keeps the tm_session cookie;
 * 4. per page: one probe (status, sanity of the numbers, compressed and uncompressed size), then
 *    for each concurrency a warm-up and N keep-alive clients for a fixed time, every request with
 *    Accept-Encoding: gzip and its own x-request-id, so each sample carries both the client's
 *    latency and the API's own time for that request (the request observer's `ms`: from the
 *    API's middleware to the last byte handed to the socket, compression included);
 * 5. prints one final JSON line.
 */
import { Agent, request } from 'node:http';
import os from 'node:os';
import { gunzipSync } from 'node:zlib';
import { datasetArgs, datasetJson, LARGEST_ACCOUNT, MONTH_END, MONTH_START, prepareDataset, withClient } from './api-dataset';
import { freePort, startApi, stopApi } from './api-process';
import { integerListArg, numberArg, stringArg } from './args';
import { percentile, round2, timedKeepAliveLoop } from './http-load';
import { backendCpuMs, backendCpuMsBetween, cpuMsOf } from './process-cpu';

const CONCURRENCIES = integerListArg('concurrency', [1, 8]);
const SECONDS = numberArg('seconds', 15);
const WARMUP_SECONDS = 3;
const PAGE_NAMES = ['overview', 'usage', 'requests'] as const;
const ONLY = stringArg('pages', PAGE_NAMES.join(','), new RegExp(`^(${PAGE_NAMES.join('|')})(,(${PAGE_NAMES.join('|')}))*$`)).split(',');

const log = (msg: string) => process.stderr.write(`[bench:web] ${msg}\n`);
const DATASET = datasetArgs(log);

interface Page {
  name: string;
  path: string;
  /** What the page must show for the probe to pass (beyond a 200 and the content type). */
  mustContain?: string[];
  contentType?: string;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body exactly as received (compressed when Content-Encoding says so). */
  body: Buffer;
  headerBytes: number;
}

function get(agent: Agent, port: number, pathAndQuery: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: pathAndQuery, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        // Status line + header lines as sent (approximately: HTTP/1.1, CRLFs).
        let headerBytes = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n\r\n`.length;
        for (let i = 0; i < res.rawHeaders.length; i += 2) headerBytes += res.rawHeaders[i].length + 2 + res.rawHeaders[i + 1].length + 2;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), headerBytes });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function decoded(r: Response): Buffer {
  return r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
}

/** Signs in with the dashboard's own form and returns the session cookie ("tm_session=..."). */
async function signIn(port: number, key: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/app/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ api_key: key, next: '/app' }).toString(),
  });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('tm_session='));
  if (res.status !== 303 || !cookie) throw new Error(`sign-in failed: ${res.status} ${(await res.text()).slice(0, 300)}`);
  return cookie.split(';')[0];
}

/** The API's own time per request, from its request log, by request id. */
class ServerTimes {
  private readonly byId = new Map<string, number>();
  onLine = (line: string) => {
    if (!line.includes('"msg":"request"')) return;
    try {
      const entry = JSON.parse(line) as { req_id?: string; ms?: number };
      if (entry.req_id?.startsWith('bench-web-') && typeof entry.ms === 'number') this.byId.set(entry.req_id, entry.ms);
    } catch {
      // not a JSON line: ignore
    }
  };
  /** Waits for the log of the last requests to arrive, then takes the times of `ids`. */
  async take(ids: string[]): Promise<number[]> {
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && !ids.every((id) => this.byId.has(id))) await new Promise((r) => setTimeout(r, 50));
    const times = ids.map((id) => this.byId.get(id)).filter((ms): ms is number => ms !== undefined);
    for (const id of ids) this.byId.delete(id);
    return times;
  }
}

/**
 * CPU spent during a window by the API process and by the Postgres backends serving the data
 * set's database (its pool's connections): the cost of a page on each side, whatever else the
 * machine runs at the time (wall-clock latency is not). Postgres must be local for the second.
 */
class CpuMeter {
  constructor(
    private readonly apiPid: number,
    private readonly databaseUrl: string,
    private readonly database: string,
  ) {}
  private backends(): Promise<Map<number, number>> {
    return withClient(this.databaseUrl, (c) => backendCpuMs(c, this.database));
  }
  async start(): Promise<() => Promise<{ apiMs: number | null; postgresMs: number | null }>> {
    const api0 = cpuMsOf(this.apiPid);
    const pg0 = await this.backends();
    return async () => {
      const api1 = cpuMsOf(this.apiPid);
      const pg1 = await this.backends();
      return { apiMs: api0 === undefined || api1 === undefined ? null : api1 - api0, postgresMs: pg1.size === 0 ? null : backendCpuMsBetween(pg0, pg1) };
    };
  }
}

interface Sample {
  ms: number;
  ok: boolean;
  id: string;
  bytes: number;
}

let sequence = 0;

async function load(port: number, page: Page, cookie: string, concurrency: number, seconds: number, progress: boolean): Promise<Sample[]> {
  const started = Date.now();
  let count = 0;
  const timer = progress
    ? setInterval(() => log(`    ${page.name} c=${concurrency}: ${count} requests in ${Math.round((Date.now() - started) / 1000)} s`), 5000)
    : undefined;
  try {
    return await timedKeepAliveLoop(concurrency, seconds, async (agent) => {
      const id = `bench-web-${++sequence}`;
      const r = await get(agent, port, page.path, { cookie, 'accept-encoding': 'gzip', 'x-request-id': id }).catch(() => undefined);
      count++;
      return { ok: r !== undefined && r.status === 200, id, bytes: r?.body.length ?? 0 };
    });
  } finally {
    if (timer) clearInterval(timer);
  }
}

interface Probe {
  status: number;
  encoding: string;
  gzipBytes: number;
  htmlBytes: number;
  headerBytes: number;
}

async function probe(port: number, page: Page, cookie: string): Promise<Probe> {
  const agent = new Agent({ keepAlive: false });
  const r = await get(agent, port, page.path, { cookie, 'accept-encoding': 'gzip' });
  agent.destroy();
  const html = decoded(r).toString('utf8');
  if (r.status !== 200 || !String(r.headers['content-type']).startsWith(page.contentType ?? 'text/html')) {
    throw new Error(`${page.name}: ${r.status} ${r.headers['content-type']} ${html.slice(0, 300)}`);
  }
  for (const s of page.mustContain ?? []) if (!html.includes(s)) throw new Error(`${page.name}: the page does not contain ${s}`);
  return {
    status: r.status,
    encoding: String(r.headers['content-encoding'] ?? 'identity'),
    gzipBytes: r.body.length,
    htmlBytes: Buffer.byteLength(html),
    headerBytes: r.headerBytes,
  };
}

interface Measured {
  concurrency: number;
  requests: number;
  errors: number;
  rps: number;
  client_p50_ms: number;
  client_p99_ms: number;
  server_p50_ms: number;
  server_p99_ms: number;
  server_samples: number;
  gzip_bytes_p50: number;
  /** CPU per request: the API process (all threads: render, gzip, pg driver) and its Postgres backends. */
  api_cpu_ms_per_request: number | null;
  postgres_cpu_ms_per_request: number | null;
}

async function measure(port: number, page: Page, cookie: string, concurrency: number, times: ServerTimes, cpu: CpuMeter): Promise<Measured> {
  await load(port, page, cookie, concurrency, WARMUP_SECONDS, false);
  await times.take([]);
  const stop = await cpu.start();
  const samples = await load(port, page, cookie, concurrency, SECONDS, true);
  const used = await stop();
  const perRequest = (ms: number | null) => (ms === null ? null : round2(ms / samples.length));
  const client = samples.map((s) => s.ms).sort((a, b) => a - b);
  const server = (await times.take(samples.map((s) => s.id))).sort((a, b) => a - b);
  const bytes = samples.filter((s) => s.ok).map((s) => s.bytes).sort((a, b) => a - b);
  const result: Measured = {
    concurrency,
    requests: samples.length,
    errors: samples.filter((s) => !s.ok).length,
    rps: Math.round(samples.length / SECONDS),
    client_p50_ms: round2(percentile(client, 50)),
    client_p99_ms: round2(percentile(client, 99)),
    server_p50_ms: round2(percentile(server, 50)),
    server_p99_ms: round2(percentile(server, 99)),
    server_samples: server.length,
    gzip_bytes_p50: percentile(bytes, 50),
    api_cpu_ms_per_request: perRequest(used.apiMs),
    postgres_cpu_ms_per_request: perRequest(used.postgresMs),
  };
  log(`  ${page.name} c=${concurrency}: ${JSON.stringify(result)}`);
  return result;
}

async function main(): Promise<void> {
  const { url, facts, key } = await prepareDataset(DATASET);
  const port = await freePort();
  const times = new ServerTimes();
  const api = await startApi({ databaseUrl: url, port, onLogLine: times.onLine });
  try {
    const cpu = new CpuMeter(api.pid!, url, DATASET.database);
    const cookie = await signIn(port, key);
    log(`signed in as ${LARGEST_ACCOUNT} through POST /app/sign-in`);
    const month = `from=${encodeURIComponent(MONTH_START)}&to=${encodeURIComponent(MONTH_END)}`;
    // The month's totals must be on the usage page: the same number as the event count.
    const accountTotal = `<data value="${facts.accountEvents}">`;
    const pages: Page[] = [
      // The overview shows the current calendar month (no month parameter): see docs/benchmarks.md.
      { name: 'overview', path: '/app' },
      { name: 'usage', path: `/app/usage?${month}&granularity=day`, mustContain: [accountTotal] },
      { name: 'requests', path: `/app/requests?${month}`, mustContain: ['id="requests-table"', '<code>evt_'] },
    ];
    // The largest pages a user can ask for over the same month: sizes only (one request each, not under load).
    const largest: Page[] = [
      { name: 'usage, by hour', path: `/app/usage?${month}&granularity=hour`, mustContain: [accountTotal] },
      { name: 'usage, by hour and model', path: `/app/usage?${month}&granularity=hour&group_by=model`, mustContain: [accountTotal] },
      { name: 'usage, by day and token type', path: `/app/usage?${month}&granularity=day&group_by=token_type`, mustContain: [accountTotal] },
      { name: 'requests, 1,000 a page', path: `/app/requests?${month}&limit=1000`, mustContain: ['id="requests-table"'] },
    ];
    const sizes: Record<string, { path: string; gzip_bytes: number; html_bytes: number }> = {};
    for (const page of largest) {
      const p = await probe(port, page, cookie);
      log(`size only: ${page.name} ${page.path}: ${p.encoding} ${p.gzipBytes.toLocaleString('en')} B on the wire (${p.htmlBytes.toLocaleString('en')} B of HTML)`);
      sizes[page.name] = { path: page.path, gzip_bytes: p.gzipBytes, html_bytes: p.htmlBytes };
    }
    // Fetched once per browser (then cached), not per page view: reported on its own.
    const css = await probe(port, { name: 'stylesheet', path: '/app/assets/app.css', contentType: 'text/css' }, cookie);
    log(`stylesheet /app/assets/app.css: ${css.encoding} ${css.gzipBytes.toLocaleString('en')} B on the wire (${css.htmlBytes.toLocaleString('en')} B)`);
    log(`load: concurrency ${CONCURRENCIES.join(', ')}, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s each; ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

    const results: Record<string, { path: string; probe: Probe; runs: Measured[] }> = {};
    const missing: string[] = [];
    for (const page of pages.filter((p) => ONLY.includes(p.name))) {
      const p = await probe(port, page, cookie).catch((err: Error) => err);
      if (p instanceof Error) {
        // A page not built yet answers 404: reported as missing, not measured.
        if (!p.message.startsWith(`${page.name}: 404 `)) throw p;
        log(`${page.name} ${page.path}: 404, not measured`);
        missing.push(page.name);
        continue;
      }
      log(`${page.name} ${page.path}: ${p.encoding} ${p.gzipBytes.toLocaleString('en')} B on the wire (${p.htmlBytes.toLocaleString('en')} B of HTML, headers ~${p.headerBytes} B)`);
      const runs: Measured[] = [];
      for (const c of CONCURRENCIES) runs.push(await measure(port, page, cookie, c, times, cpu));
      results[page.name] = { path: page.path, probe: p, runs };
    }

    const perPage = Object.fromEntries(
      Object.entries(results).map(([name, r]) => [
        name,
        {
          path: r.path,
          gzip_bytes: r.probe.gzipBytes,
          html_bytes: r.probe.htmlBytes,
          ...Object.fromEntries(
            r.runs.flatMap((m) => [
              [`c${m.concurrency}_server_p50_ms`, m.server_p50_ms],
              [`c${m.concurrency}_server_p99_ms`, m.server_p99_ms],
              [`c${m.concurrency}_client_p50_ms`, m.client_p50_ms],
              [`c${m.concurrency}_client_p99_ms`, m.client_p99_ms],
              [`c${m.concurrency}_rps`, m.rps],
              [`c${m.concurrency}_api_cpu_ms`, m.api_cpu_ms_per_request],
              [`c${m.concurrency}_postgres_cpu_ms`, m.postgres_cpu_ms_per_request],
            ]),
          ),
        },
      ]),
    );
    const all = Object.values(results).flatMap((r) => r.runs);
    console.log(
      JSON.stringify({
        ...datasetJson(DATASET, facts),
        seconds: SECONDS,
        pages: perPage,
        stylesheet_gzip_bytes: css.gzipBytes,
        largest_pages: sizes,
        missing_pages: missing,
        requests: all.reduce((n, m) => n + m.requests, 0),
        errors: all.reduce((n, m) => n + m.errors, 0),
      }),
    );
    // Every answer must have been a 200: a benchmark of error pages measures nothing.
    if (all.some((m) => m.errors > 0)) process.exitCode = 1;
  } finally {
    await stopApi(api);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
