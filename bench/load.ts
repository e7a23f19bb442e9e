/**
 * Sustained load: the API under a few hundred concurrent keep-alive connections on mixed routes
 * for a minute, with no errors, and its memory sampled throughout.
 *
 *   npm run bench:load [-- --connections 300] [--duration 60] [--events 500000] [--accounts 500] [--keys 20] [--reseed]
 *
 * 1. seeds (or reuses) a scratch database, tokenmeter_bench_load, with bench:api's loader
 *    (bench/api-dataset.ts: a month of events and their rollups, skewed over the accounts);
 * 2. starts the real API (apps/api/src/main.ts) as its own process, with a bootstrap admin key
 *    (TOKENMETER_ADMIN_KEY), and creates account keys the normal way (POST /admin/api-keys);
 * 3. autocannon drives --connections connections for --duration seconds, each cycling through
 *    the same mixed list: per account, its usage summary, daily time series and newest events
 *    (account keys), the admin event list for it and the audit log (admin key), /health/live and
 *    /health/ready. Every request on that list has 200 as its right answer;
 * 4. samples the API process's RSS every second (before, during, after the load) and prints
 *    requests/s, latency p50/p99, status counts per route, errors and timeouts, and RSS
 *    start/max/end as one JSON line. Exits 1 on any non-2xx answer, error or timeout.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { ensureDataset, MONTH_END, MONTH_START } from './api-dataset';
import { startApi } from './api-process';
import { numberArg } from './args';
import { freePort } from '../test/helpers/processes';

const CONNECTIONS = Math.floor(numberArg('connections', 300));
const DURATION = numberArg('duration', 60);
const EVENTS = Math.floor(numberArg('events', 500_000));
const ACCOUNTS = Math.floor(numberArg('accounts', 500));
const KEYS = Math.floor(numberArg('keys', 20));
const RESEED = process.argv.includes('--reseed');
const BENCH_DB = 'tokenmeter_bench_load';

const log = (msg: string) => process.stderr.write(`[bench:load] ${msg}\n`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

async function call(base: string, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function main(): Promise<void> {
  const url = await ensureDataset({ database: BENCH_DB, events: EVENTS, accounts: ACCOUNTS, months: 1, reseed: RESEED, log });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const adminKey = `tm_bench_${randomBytes(24).toString('hex')}`;
  const api = await startApi({ databaseUrl: url, port, env: { TOKENMETER_ADMIN_KEY: adminKey } });
  const pid = api.pid!;
  try {
    // Account keys through the normal path; the accounts with the most usage (acct_00000 is the largest).
    const accounts = Array.from({ length: Math.min(KEYS, ACCOUNTS) }, (_, i) => `acct_${String(i).padStart(5, '0')}`);
    const keys = new Map<string, string>();
    for (const account of accounts) {
      const r = await call(base, adminKey, 'POST', '/admin/api-keys', { role: 'account', account_id: account, name: 'bench:load' });
      if (r.status !== 201) throw new Error(`POST /admin/api-keys answered ${r.status}: ${JSON.stringify(r.json)}`);
      keys.set(account, (r.json as { key: string }).key);
    }
    const range = `from=${MONTH_START}&to=${MONTH_END}`;
    const routes: { name: string; path: string; key: string | null }[] = [];
    for (const [account, key] of keys) {
      routes.push({ name: 'GET /v1/usage/summary', path: `/v1/usage/summary?${range}`, key });
      routes.push({ name: 'GET /v1/usage/timeseries', path: `/v1/usage/timeseries?${range}&granularity=day`, key });
      routes.push({ name: 'GET /v1/usage/events', path: `/v1/usage/events?${range}&limit=50`, key });
      routes.push({ name: 'GET /admin/events', path: `/admin/events?account_id=${account}&limit=50`, key: adminKey });
      routes.push({ name: 'GET /admin/audit-log', path: '/admin/audit-log?limit=50', key: adminKey });
      routes.push({ name: 'GET /health/live', path: '/health/live', key: null });
      routes.push({ name: 'GET /health/ready', path: '/health/ready', key: null });
    }
    // Every route answers 200 before the load starts (a 4xx here is a bug in this script).
    for (const r of routes.slice(0, 7)) {
      const res = await fetch(`${base}${r.path}`, { headers: r.key ? { authorization: `Bearer ${r.key}` } : {} });
      if (res.status !== 200) throw new Error(`${r.name} answered ${res.status} before the load: ${(await res.text()).slice(0, 300)}`);
    }

    const statuses = new Map<string, Map<number, number>>();
    const requests: autocannon.Request[] = routes.map((r) => ({
      method: 'GET',
      path: r.path,
      headers: r.key ? { authorization: `Bearer ${r.key}` } : {},
      onResponse: (status: number) => {
        const m = statuses.get(r.name) ?? new Map<number, number>();
        m.set(status, (m.get(status) ?? 0) + 1);
        statuses.set(r.name, m);
      },
    }));

    const rss: number[] = [];
    const rssStart = rssMb(pid);
    const sampler = setInterval(() => rss.push(rssMb(pid)), 1000);
    log(`${CONNECTIONS} connections for ${DURATION} s over ${routes.length} requests (${keys.size} accounts x 7 routes); API pid ${pid}, RSS ${rssStart} MB; ${os.cpus().length} CPUs`);
    let lastReport = 0;
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        { url: base, connections: CONNECTIONS, duration: DURATION, requests, timeout: 10 },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      let count = 0;
      instance.on('response', () => {
        count++;
        if (Date.now() - lastReport >= 10_000) {
          lastReport = Date.now();
          log(`${count} responses so far, API RSS ${rssMb(pid)} MB`);
        }
      });
    });
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 3000));
    const rssEnd = rssMb(pid);

    const byRoute = Object.fromEntries([...statuses].map(([name, m]) => [name, Object.fromEntries(m)]));
    const non2xx = result.non2xx;
    const out = {
      connections: CONNECTIONS,
      duration_s: DURATION,
      events: EVENTS,
      accounts: ACCOUNTS,
      requests: result.requests.total,
      requests_per_s: Math.round(result.requests.average),
      latency_p50_ms: result.latency.p50,
      latency_p99_ms: result.latency.p99,
      latency_max_ms: result.latency.max,
      non_2xx: non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      api_rss_mb: { start: rssStart, max: Math.max(rssStart, ...rss), end_after_3s: rssEnd },
      statuses: byRoute,
    };
    log(`per route: ${JSON.stringify(byRoute)}`);
    console.log(JSON.stringify(out));
    if (non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
      log(`FAILED: ${non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
      process.exitCode = 1;
    }
  } finally {
    api.kill('SIGTERM');
    await new Promise((r) => api.once('exit', r));
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
