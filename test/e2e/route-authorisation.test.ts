import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Database } from '@tokenmeter/db';
import { insertApiKey, startApi } from '../helpers/api-app';
import { openTestDatabase, resetDatabase } from '../helpers/tokenmeter-db';

/**
 * Every route the API registers, discovered from the router (so a new route is covered the day it
 * is added): without a key it answers 401 unless it is one of the few public routes; an account
 * key gets 403 on every admin route; an account key naming another account gets 404 on every
 * account route that takes account_id; an auditor key gets through on every read an admin key
 * may make and 403 on every write. The per-area suites check the happy paths and the details.
 */
// No API key: health and metrics are open, Stripe signs its webhook, and the gateway's two routes take the ingest token.
const PUBLIC = new Set(['GET /health/live', 'GET /health/ready', 'GET /metrics', 'POST /webhooks/stripe', 'POST /v1/events', 'POST /v1/spend/authorize']);
/** Dashboard pages anyone may open; every other /app route needs a session (a cookie, not a key). */
const OPEN_PAGES = new Set(['GET /app/sign-in', 'POST /app/sign-in', 'GET /app/link/:token', 'POST /app/sign-out', 'GET /app/assets/app.css']);
const isPage = (path: string) => path === '/app' || path.startsWith('/app/');

describe('authorisation of every route', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let routes: { method: string; path: string }[];
  let pages: { method: string; path: string }[];
  let accountKey: string;
  let auditorKey: string;
  let adminKey: string;

  beforeAll(async () => {
    db = openTestDatabase();
    ({ app, base } = await startApi());
    type Layer = { route?: { path: string; methods: Record<string, boolean> } };
    const express = app.getHttpAdapter().getInstance() as { _router?: { stack: Layer[] }; router?: { stack: Layer[] } };
    routes = (express.router ?? express._router)!.stack
      .filter((l) => l.route && !l.route.path.startsWith('/docs') && l.route.path !== '/openapi.json' && !l.route.path.includes('*'))
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => ({ method: m.toUpperCase(), path: l.route!.path })));
    pages = routes.filter((r) => isPage(r.path));
    // The API-key rules below are about the JSON API; pages have their own test at the end.
    routes = routes.filter((r) => !isPage(r.path));
  });
  afterAll(async () => {
    await app.close();
    await db.close();
  });
  beforeEach(async () => {
    await resetDatabase(db);
    await db.pool.query("INSERT INTO accounts (id) VALUES ('acct_mine'), ('acct_other')");
    accountKey = await insertApiKey(db, 'account', 'acct_mine');
    auditorKey = await insertApiKey(db, 'auditor');
    adminKey = await insertApiKey(db, 'admin');
  });

  const call = (method: string, path: string, key?: string) =>
    fetch(`${base}${path.replace(/:[A-Za-z_]+/g, 'x')}`, {
      method,
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : '{}',
    });
  const isRead = (method: string) => method === 'GET' || method === 'HEAD';

  it('finds the routes', () => {
    expect(routes.length).toBeGreaterThan(30);
  });

  it('answers 401 unauthorized without a key, or a wrong one, on every non-public route', async () => {
    const wrong: string[] = [];
    const keys: [string, string | undefined][] = [
      ['no key', undefined],
      ['unknown key', 'tm_live_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'],
      ['not a key', 'not-a-key'],
    ];
    for (const { method, path } of routes) {
      if (PUBLIC.has(`${method} ${path}`)) continue;
      for (const [label, key] of keys) {
        const res = await call(method, path, key);
        const body = (await res.json().catch(() => null)) as { error?: Record<string, unknown> } | null;
        const shape = Object.keys(body?.error ?? {}).sort().join(',');
        if (res.status !== 401 || body?.error?.code !== 'unauthorized' || shape !== 'code,details,message') {
          wrong.push(`${method} ${path} (${label}) -> ${res.status} ${JSON.stringify(body)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('answers 403 to an account key on every admin route', async () => {
    const wrong: string[] = [];
    for (const { method, path } of routes.filter((r) => r.path.startsWith('/admin'))) {
      const res = await call(method, path, accountKey);
      if (res.status !== 403) wrong.push(`${method} ${path} -> ${res.status}`);
    }
    expect(wrong).toEqual([]);
  });

  it("answers 404 to an account key asking for another account's data on every account route", async () => {
    const accountRoutes = routes.filter((r) => r.method === 'GET' && r.path.startsWith('/v1/') && !PUBLIC.has(`${r.method} ${r.path}`));
    expect(accountRoutes.length).toBeGreaterThan(4);
    const wrong: string[] = [];
    for (const { method, path } of accountRoutes) {
      if (path === '/v1/prices') continue; // the public price list is the same for everyone
      const query = 'account_id=acct_other&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z';
      const res = await call(method, `${path}?${query}`, accountKey);
      if (res.status !== 404) wrong.push(`${method} ${path} -> ${res.status}`);
    }
    expect(wrong).toEqual([]);
  });

  it('lets an admin key, and an auditor key as far as the admin key gets, through on every read (GET and HEAD)', async () => {
    const reads = routes.filter((r) => isRead(r.method) && !PUBLIC.has(`${r.method} ${r.path}`));
    expect(reads.filter((r) => r.path.startsWith('/admin')).length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const { path } of reads) {
      // account_id and a range, so per-account routes get past scopeAccount (auditors must name the account, like admins).
      const query = path.startsWith('/v1/') ? '?account_id=acct_mine&from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z' : '';
      for (const method of ['GET', 'HEAD']) {
        const [asAdmin, asAuditor] = [await call(method, `${path}${query}`, adminKey), await call(method, `${path}${query}`, auditorKey)];
        await Promise.all([asAdmin.arrayBuffer(), asAuditor.arrayBuffer()]);
        if (asAdmin.status === 401 || asAdmin.status === 403) wrong.push(`${method} ${path}: admin ${asAdmin.status}`);
        if (asAuditor.status !== asAdmin.status) wrong.push(`${method} ${path}: admin ${asAdmin.status}, auditor ${asAuditor.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('answers 403 to an auditor key on every write, where an admin key gets past authorisation', async () => {
    const writes = routes.filter((r) => !isRead(r.method) && !PUBLIC.has(`${r.method} ${r.path}`));
    expect(writes.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const { method, path } of writes) {
      const asAuditor = await call(method, path, auditorKey);
      const body = (await asAuditor.json()) as { error?: { code?: string } };
      if (asAuditor.status !== 403 || body.error?.code !== 'forbidden') wrong.push(`${method} ${path} -> auditor ${asAuditor.status}`);
      // The same request with an admin key is not refused by authorisation (a 400 or 404 from the handler at most).
      const asAdmin = await call(method, path, adminKey);
      await asAdmin.arrayBuffer();
      if (asAdmin.status === 401 || asAdmin.status === 403) wrong.push(`${method} ${path} -> admin ${asAdmin.status}`);
    }
    expect(wrong).toEqual([]);
  });

  /** A session cookie from the sign-in form, as a browser gets it. */
  async function sessionOf(key: string): Promise<string> {
    const res = await fetch(`${base}/app/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `api_key=${encodeURIComponent(key)}`,
      redirect: 'manual',
    });
    const cookie = /tm_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
    if (!cookie) throw new Error(`sign-in answered ${res.status} without a session`);
    return `tm_session=${cookie}`;
  }
  const page = (method: string, path: string, cookie?: string) =>
    fetch(`${base}${path.replace(/:[A-Za-z_]+/g, 'x')}`, {
      method,
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      body: method === 'GET' || method === 'HEAD' ? undefined : '',
    });

  it('dashboard pages: without a session every page sends the browser to sign-in; an API key is no session', async () => {
    expect(pages.length).toBeGreaterThan(3);
    const wrong: string[] = [];
    for (const { method, path } of pages.filter((p) => !OPEN_PAGES.has(`${p.method} ${p.path}`))) {
      for (const headers of [{}, { authorization: `Bearer ${adminKey}` }] as Record<string, string>[]) {
        const res = await fetch(`${base}${path.replace(/:[A-Za-z_]+/g, 'x')}`, { method, headers, redirect: 'manual' });
        if (res.status !== 303 || !/\/app\/sign-in/.test(res.headers.get('location') ?? '')) wrong.push(`${method} ${path} -> ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('dashboard pages: an account session gets the 404 page on every admin page; an auditor session 403 on every write', async () => {
    const account = await sessionOf(accountKey);
    const auditor = await sessionOf(auditorKey);
    const wrong: string[] = [];
    for (const { method, path } of pages.filter((p) => p.path.startsWith('/app/admin'))) {
      const res = await page(method, path, account);
      if (res.status !== 404) wrong.push(`${method} ${path} as account -> ${res.status}`);
    }
    for (const { method, path } of pages.filter((p) => p.method === 'POST' && !OPEN_PAGES.has(`${p.method} ${p.path}`))) {
      const res = await page(method, path, auditor);
      if (res.status !== 403) wrong.push(`${method} ${path} as auditor -> ${res.status}`);
    }
    expect(wrong).toEqual([]);
  });
});
