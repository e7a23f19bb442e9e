import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Page } from 'playwright-core';
import { Decimal } from '@tokenmeter/billing';
import type { Database } from '@tokenmeter/db';
import { aUsageEvent } from '../factories/usage-events';
import { client, insertApiKey, startApi } from '../helpers/api-app';
import { dataValues, openBrowser, signIn, type TestBrowser } from '../helpers/browser';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const A = 'acct_web_a';
const B = 'acct_web_b';
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';

/** Instants spread over this month so far, so the overview ("this month") holds them whatever the day. */
function thisMonth(i: number, n: number): string {
  const now = Date.now();
  const start = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
  return new Date(start + Math.floor(((now - 60_000 - start) * (i + 1)) / (n + 1))).toISOString();
}

/**
 * The dashboard in a real Chromium: both ways of signing in, the overview showing the API's own
 * numbers, isolation between accounts, sign-out, the session cookie, CSRF, CSP, nothing fetched
 * from elsewhere, hostile text staying text, and an accessibility check.
 */
describe('web dashboard: sign-in, sessions, overview', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let browser: TestBrowser;
  let adminKey: string;
  let accountKey: string;

  beforeAll(async () => {
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    ({ app, base } = await startApi());
    adminKey = await insertApiKey(db, 'admin');
    const admin = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
    for (const [id, name] of [[A, HOSTILE_NAME], [B, 'Other Co']]) {
      const res = await fetch(`${base}/admin/accounts`, { method: 'POST', headers: admin, body: JSON.stringify({ id, name }) });
      expect(res.status).toBe(201);
    }
    const models = ['deepseek-r1', 'gpt-4o', 'claude-sonnet-4', 'deepseek-r1', 'gpt-4o-mini', 'deepseek-v3', 'deepseek-r1'];
    const events = Array.from({ length: 28 }, (_, i) =>
      aUsageEvent({
        event_id: `evt_web_a_${i}`,
        account_id: A,
        api_key_id: `key_${i % 7}`,
        model: models[i % models.length],
        occurred_at: thisMonth(i, 28),
        usage: { input_tokens: 1000 + 37 * i, output_tokens: 200 + 11 * i, cache_read_tokens: 50 * i },
      }),
    );
    events.push(aUsageEvent({ event_id: 'evt_web_b_1', account_id: B, occurred_at: thisMonth(1, 2) }));
    await client(base).ingest(events);
    // A budget and a credit grant, so the overview shows both sections next to the API's numbers.
    const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: admin, body: JSON.stringify(body) });
    expect((await post('/admin/budgets', { account_id: A, limit_usd: '0.05', window: 'month', enforce: 'hard' })).status).toBe(201);
    const monthStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1)).toISOString();
    const grant = { amount_usd: '0.02', category: 'promotional', effective_at: monthStart, idempotency_key: 'web-test' };
    expect((await post(`/admin/accounts/${A}/credit-grants`, grant)).status).toBe(201);
    accountKey = await insertApiKey(db, 'account', A);
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.close();
  });

  async function api(path: string, key = accountKey) {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    return res.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  async function expectOverviewMatchesApi(page: Page, accountId: string, key: string) {
    const [from, to] = await page.locator('.scope time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')!));
    const query = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}${key === adminKey ? `&account_id=${accountId}` : ''}`;
    const summary = await api(`/v1/usage/summary?${query}`, key);
    const t = summary.totals;
    expect(await dataValues(page, '#totals')).toEqual([t.cost_usd, ...[t.requests, t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens].map(String)]);
    // Each breakdown's rows (top 5 + "Other") sum exactly to the total shown under them.
    for (const table of ['#by-model-table', '#by-key-table']) {
      const costs = await page.locator(`${table} tbody td:nth-child(3) data`).evaluateAll((els) => els.map((e) => (e as HTMLDataElement).value));
      const total = await page.locator(`${table} tfoot td:nth-child(3) data`).getAttribute('value');
      expect(total).toBe(t.cost_usd);
      expect(costs.length).toBeGreaterThan(1);
      expect(costs.reduce((s, c) => s.plus(c), new Decimal(0)).equals(new Decimal(total!))).toBe(true);
    }
    // Budgets and credits: the same exact amounts as /v1/budgets and /v1/credits.
    const budgets = (await api(`/v1/budgets${key === adminKey ? `?account_id=${accountId}` : ''}`, key)).data;
    const shownBudgets = await page.locator('#budgets-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => Array.from(r.querySelectorAll('data'), (d) => (d as HTMLDataElement).value)),
    );
    type BudgetAmounts = { spend_usd: string; limit_usd: string; remaining_usd: string };
    expect(shownBudgets).toEqual(budgets.map((b: BudgetAmounts) => [b.spend_usd, b.limit_usd, b.remaining_usd]));
    const credits = await api(`/v1/credits${key === adminKey ? `?account_id=${accountId}` : ''}`, key);
    const shownCredits = await page.locator('#credits-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => Array.from(r.querySelectorAll('data'), (d) => (d as HTMLDataElement).value)),
    );
    expect(shownCredits).toEqual(credits.grants.map((g: { amount_usd: string; available_usd: string }) => [g.amount_usd, g.available_usd]));
    expect(credits.grants[0].available_usd).not.toBe(credits.grants[0].amount_usd); // usage already burns it
    // The daily table is the chart's data, and equals the API's day buckets.
    const series = await api(`/v1/usage/timeseries?${query}&granularity=day`, key);
    const days = await page.locator('#daily-table tbody td:nth-child(3) data').evaluateAll((els) => els.map((e) => (e as HTMLDataElement).value));
    expect(days).toEqual(series.buckets.map((b: { cost_usd: string }) => b.cost_usd));
    return summary;
  }

  it('an account key signs in through the form; the overview shows the API numbers, exactly', async () => {
    const page = await browser.newPage(base);
    await page.goto(`${base}/app`);
    expect(new URL(page.url()).pathname).toBe('/app/sign-in');
    await signIn(page, base, accountKey);
    expect(new URL(page.url()).pathname).toBe('/app');
    const summary = await expectOverviewMatchesApi(page, A, accountKey);
    expect(summary.totals.requests).toBe(28);
    expect(await page.locator('footer').textContent()).toContain('All times are UTC.');
    // Freshness is the API's complete_up_to (unknown here: this usage came over HTTP, not Kafka).
    if (summary.complete_up_to === null) expect(await page.locator('.freshness').textContent()).toMatch(/^Freshness unknown/);
    else expect(await page.locator('.freshness time').getAttribute('datetime')).toBe(summary.complete_up_to);
    // The key is not in the browser: only an HttpOnly, SameSite=Strict session cookie scoped to /app.
    const cookies = await page.context().cookies();
    expect(cookies.map((c) => c.name)).toEqual(['tm_session']);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/app' });
    expect(cookies[0].value).not.toContain(accountKey.slice(-10));
    await browser.checkAccessibility(page, 'overview');
    await browser.screenshot(page, 'overview');
    expect(browser.foreignRequests(page)).toEqual([]);
  });

  it('hostile text stays text: an account named like an <img onerror> is shown, not run', async () => {
    const page = await browser.newPage(base);
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await signIn(page, base, accountKey);
    expect(await page.locator('#account-name').textContent()).toBe(HOSTILE_NAME);
    expect(await page.locator('main img').count()).toBe(0);
    expect(dialogs).toBe(0);
  });

  it('every page answer carries the strict CSP and nothing leaves the origin', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, accountKey);
    const response = await page.goto(`${base}/app`);
    const csp = response!.headers()['content-security-policy'];
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("script-src-attr 'none'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(browser.foreignRequests(page)).toEqual([]);
  });

  it("an account session cannot see another account's pages: the same 404 page as a missing one", async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, accountKey);
    const other = await page.goto(`${base}/app?account_id=${B}`);
    expect(other!.status()).toBe(404);
    const missing = await page.goto(`${base}/app/no-such-page`);
    expect(missing!.status()).toBe(404);
    expect(await page.locator('h1').textContent()).toBe('Not found');
  });

  it('an admin key signs in to the admin side and can open any account as the account sees it', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, adminKey);
    expect(new URL(page.url()).pathname).toBe('/app/admin');
    await page.goto(`${base}/app?account_id=${A}`);
    await expectOverviewMatchesApi(page, A, adminKey);
  });

  it('a wrong key is refused with a message and no session; the form is labelled', async () => {
    const page = await browser.newPage(base);
    await page.goto(`${base}/app/sign-in`);
    await page.getByLabel('API key').fill('tm_live_AAAAAAAA_notavalidkeynotavalidkeynotavalid');
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await page.getByRole('alert').textContent()).toMatch(/not valid/);
    expect(await page.context().cookies()).toEqual([]);
    await browser.checkAccessibility(page, 'sign-in');
    await browser.screenshot(page, 'sign-in');
  });

  it('sign-out ends the session on the server: the old cookie no longer works', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, accountKey);
    const [cookie] = await page.context().cookies();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/app\/sign-in/);
    // Replay the cookie the browser had: the server refuses it.
    const replay = await fetch(`${base}/app`, { headers: { cookie: `tm_session=${cookie.value}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toMatch(/\/app\/sign-in/);
  });

  it('a form without the session CSRF token, or from another origin, is refused', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, accountKey);
    const [cookie] = await page.context().cookies();
    const headers = { cookie: `tm_session=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' };
    const noToken = await fetch(`${base}/app/sign-out`, { method: 'POST', headers, body: '', redirect: 'manual' });
    expect(noToken.status).toBe(403);
    const csrf = await page.locator('input[name=_csrf]').first().getAttribute('value');
    const foreign = await fetch(`${base}/app/sign-out`, { method: 'POST', headers: { ...headers, origin: 'http://evil.example' }, body: `_csrf=${csrf}`, redirect: 'manual' });
    expect(foreign.status).toBe(403);
    // Still signed in after both attempts.
    expect((await fetch(`${base}/app`, { headers: { cookie: `tm_session=${cookie.value}` }, redirect: 'manual' })).status).toBe(200);
  });

  it('a dashboard link signs one browser in as its account, once', async () => {
    const res = await fetch(`${base}/admin/accounts/${A}/dashboard-links`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
    expect(res.status).toBe(201);
    const { url, expires_at } = (await res.json()) as { url: string; expires_at: string };
    expect(Date.parse(expires_at)).toBeGreaterThan(Date.now());
    const link = `${base}${new URL(url).pathname}`;
    const page = await browser.newPage(base);
    await page.goto(link);
    await page.waitForURL(`${base}/app`);
    await expectOverviewMatchesApi(page, A, accountKey);
    // The link is spent: a second browser gets the 404 page and no session.
    const again = await browser.newPage(base);
    const second = await again.goto(link);
    expect(second!.status()).toBe(404);
    expect(await again.context().cookies()).toEqual([]);
    // Audited, without the token.
    const audit = await db.pool.query("SELECT actor_key_id, target_id, after FROM audit_log WHERE action = 'dashboard_link.create'");
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0].target_id).toBe(A);
    expect(JSON.stringify(audit.rows[0].after)).not.toContain(new URL(url).pathname.split('/').pop()!);
  });

  it('revoking the key ends the sessions it started', async () => {
    const key = await insertApiKey(db, 'account', A);
    const page = await browser.newPage(base);
    await signIn(page, base, key);
    const keyId = (await db.pool.query('SELECT key_id FROM web_sessions WHERE ended_at IS NULL ORDER BY created_at DESC LIMIT 1')).rows[0].key_id as string;
    const revoked = await fetch(`${base}/admin/api-keys/${keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } });
    expect(revoked.status).toBe(200);
    await page.goto(`${base}/app`);
    expect(new URL(page.url()).pathname).toBe('/app/sign-in');
  });
});
