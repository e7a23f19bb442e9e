import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Page } from 'playwright-core';
import { DATABASE, type Database } from '@tokenmeter/db';
import { aUsageEvent } from '../factories/usage-events';
import { BACKGROUND_STATEMENTS, client, insertApiKey, startApi } from '../helpers/api-app';
import { dataValues, openBrowser, signIn, type TestBrowser } from '../helpers/browser';
import { setIngestProgress } from '../helpers/invoicing';
import { StripeProxy } from '../helpers/stripe-proxy';
import { uniqueName } from '../helpers/kafka';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const A = 'acct_adm_a';
const B = 'acct_adm_b';
const OCT = { from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' };
const HOSTILE_PAYLOAD = '{"event_id":"evt_adm_bad","account_id":"<script>alert(1)</script>"}';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The admin pages in a real Chromium, against the JSON API on the same data: every page passes
 * the axe check and fetches nothing from elsewhere; numbers equal the API's; every kind of action
 * done through a page leaves the audit entry the JSON API writes (same action, actor, before and
 * after); auditors see no write form and a forged POST is 403; account sessions get the 404 page.
 */
describe('web dashboard: admin pages', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let browser: TestBrowser;
  let adminKey: string;
  let adminKeyId: string;
  let auditorKey: string;
  let accountKey: string;
  let stripe: StripeProxy;
  const previousTopic = process.env.KAFKA_USAGE_TOPIC;
  const previousStripe = process.env.STRIPE_API_BASE;

  const keyIdOf = async (key: string) => (await db.pool.query('SELECT id FROM api_keys WHERE prefix = $1', [key.slice(0, 16)])).rows[0].id as string;

  async function api(method: string, path: string, body?: unknown, key = adminKey): Promise<{ status: number; body: Json; text: string }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      // exports are not JSON
    }
    return { status: res.status, body: parsed, text };
  }

  /** The newest audit entries, as GET /admin/audit-log answers them. */
  async function auditLog(limit = 1): Promise<Json[]> {
    const res = await api('GET', `/admin/audit-log?limit=${limit}`);
    expect(res.status).toBe(200);
    return res.body.data;
  }

  async function adminPage(key = adminKey): Promise<Page> {
    const page = await browser.newPage(base);
    await signIn(page, base, key);
    return page;
  }

  async function submit(page: Page, form: string, url: RegExp): Promise<void> {
    await Promise.all([page.waitForURL(url), page.locator(`${form} button[type=submit]`).click()]);
  }

  const column = (page: Page, table: string, n: number) => page.locator(`${table} tbody td:nth-child(${n})`).allTextContents();

  beforeAll(async () => {
    // A topic the broker does not have: only the ingest_progress row below decides whether October is complete.
    process.env.KAFKA_USAGE_TOPIC = uniqueName('usage.web-admin');
    // stripe-mock behind a proxy that can make Stripe fail, so a sync can fail and be retried from the page.
    stripe = await new StripeProxy().start();
    process.env.STRIPE_API_BASE = stripe.url;
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    await setIngestProgress(db, new Date('2026-11-01T01:00:00Z'));
    ({ app, base } = await startApi());
    adminKey = await insertApiKey(db, 'admin');
    adminKeyId = await keyIdOf(adminKey);
    auditorKey = await insertApiKey(db, 'auditor');
    for (const [id, name] of [
      [A, 'Acme Widgets'],
      [B, '<b>Beta</b>'],
    ]) {
      expect((await api('POST', '/admin/accounts', { id, name })).status).toBe(201);
    }
    accountKey = await insertApiKey(db, 'account', A);
    const oct = (day: number, hour: number) => `2026-10-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:15:00Z`;
    const events = [
      ...Array.from({ length: 5 }, (_, i) => aUsageEvent({ event_id: `evt_adm_a_${i}`, account_id: A, occurred_at: oct(3 + i, 10), usage: { input_tokens: 100_000 * (i + 1), output_tokens: 20_000, cache_read_tokens: 5_000 } })),
      aUsageEvent({ event_id: 'evt_adm_a_gpt', account_id: A, model: 'gpt-4o', occurred_at: oct(12, 9), usage: { input_tokens: 40_000, output_tokens: 9_000 } }),
      ...Array.from({ length: 3 }, (_, i) => aUsageEvent({ event_id: `evt_adm_b_${i}`, account_id: B, occurred_at: oct(20 + i, 14), usage: { input_tokens: 10_000, output_tokens: 2_000 } })),
      aUsageEvent({ event_id: 'evt_adm_unpriced', account_id: A, model: 'mystery-model', occurred_at: '2026-11-05T08:00:00Z', usage: { input_tokens: 777, output_tokens: 1 } }),
    ];
    await client(base).ingest(events);
    // A reused event id with another payload (a conflict), and a payload ingest refuses.
    await client(base).ingest([{ ...events[0], usage: { input_tokens: 1, output_tokens: 1 } }]);
    const refused = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test-ingest-token-0123456789' },
      body: `{"events":[${HOSTILE_PAYLOAD}]}`,
    });
    expect(refused.status).toBe(200);
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.close();
    await stripe?.stop();
    if (previousStripe === undefined) delete process.env.STRIPE_API_BASE;
    else process.env.STRIPE_API_BASE = previousStripe;
    if (previousTopic === undefined) delete process.env.KAFKA_USAGE_TOPIC;
    else process.env.KAFKA_USAGE_TOPIC = previousTopic;
  });

  const PAGES: [string, string][] = [
    ['accounts', '/app/admin'],
    ['accounts-october', `/app/admin?from=${OCT.from}&to=${OCT.to}`],
    ['account', `/app/admin/accounts/${A}`],
    ['events', '/app/admin/events'],
    ['rejected', '/app/admin/rejected'],
    ['conflicts', '/app/admin/conflicts'],
    ['unpriced', '/app/admin/unpriced'],
    ['prices', '/app/admin/prices'],
    ['reprice', '/app/admin/reprice'],
    ['invoices', '/app/admin/invoices?period=2026-10'],
    ['reconciliation', '/app/admin/invoices/reconciliation?period=2026-10&stripe=false'],
    ['audit', '/app/admin/audit'],
    ['keys', '/app/admin/keys'],
  ];

  const WRITE_PAGES = ['account', 'prices', 'reprice', 'invoices', 'keys'];

  it('every admin page renders for an admin, passes the axe check and fetches nothing from elsewhere', async () => {
    const page = await adminPage();
    for (const [name, path] of PAGES) {
      const res = await page.goto(`${base}${path}`);
      expect([name, res!.status()]).toEqual([name, 200]);
      expect(await page.locator('footer').textContent()).toContain('All times are UTC.');
      // The write forms are there for an admin (the auditor test below expects none).
      if (WRITE_PAGES.includes(name)) expect([name, await page.locator('main form[method=post]').count()]).not.toEqual([name, 0]);
      await browser.checkAccessibility(page, `admin ${name}`);
      await browser.screenshot(page, `admin-${name}`);
    }
    expect(browser.foreignRequests(page)).toEqual([]);
  });

  it('accounts ranked by spend are GET /admin/usage/accounts for the range; search finds by name and by id prefix', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin?from=${OCT.from}&to=${OCT.to}`);
    const ranked = await api('GET', `/admin/usage/accounts?from=${OCT.from}&to=${OCT.to}`);
    expect(ranked.body.data.map((a: Json) => a.account_id)).toEqual([A, B]);
    expect(await column(page, '#ranking-table', 1)).toEqual(ranked.body.data.map((a: Json) => a.account_id));
    expect(await page.locator('#ranking-table tbody td:nth-child(7) data').evaluateAll((els) => els.map((e) => (e as HTMLDataElement).value))).toEqual(
      ranked.body.data.map((a: Json) => a.cost_usd),
    );
    // Names come from the accounts table, as text.
    expect(await column(page, '#ranking-table', 2)).toEqual(['Acme Widgets', '<b>Beta</b>']);
    expect(await page.locator('main b').count()).toBe(0);
    await page.getByLabel('Account id (prefix) or name').fill('acme');
    await Promise.all([page.waitForURL(/q=acme/), page.getByRole('button', { name: 'Search' }).click()]);
    expect(await column(page, '#search-results', 1)).toEqual([A]);
    await page.goto(`${base}/app/admin?q=acct_adm_`);
    expect(await column(page, '#search-results', 1)).toEqual([A, B]);
    // "As the account sees it" is the account's own overview, for this admin session.
    await page.goto(`${base}/app/admin/accounts/${A}`);
    await Promise.all([page.waitForURL(/\/app\?account_id=/), page.getByRole('link', { name: 'Overview' }).click()]);
    expect(await page.locator('main').textContent()).toContain(A);
  });

  it('event search is GET /admin/events; the page exports are the API exports, byte for byte', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/events?account_id=${A}&model=deepseek-r1`);
    const listed = await api('GET', `/admin/events?account_id=${A}&model=deepseek-r1`);
    expect(listed.body.data).toHaveLength(5);
    expect(await column(page, '#events-table', 2)).toEqual(listed.body.data.map((e: Json) => e.event_id));
    expect(await dataValues(page, '#events-table tbody td:nth-child(10)')).toEqual(listed.body.data.map((e: Json) => e.costs.cost_usd));
    for (const format of ['csv', 'ndjson']) {
      const href = await page.getByRole('link', { name: format.toUpperCase() }).getAttribute('href');
      expect(href).toBe(`/app/admin/events.${format}?account_id=${A}&model=deepseek-r1`);
      const fromPage = await page.request.get(`${base}${href}`);
      expect(fromPage.status()).toBe(200);
      const fromApi = await api('GET', `/admin/events/export?account_id=${A}&model=deepseek-r1&format=${format}`);
      expect(fromPage.headers()['content-type']).toBe(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
      expect(await fromPage.text()).toBe(fromApi.text);
      expect(fromApi.text.trim().split('\n')).toHaveLength(format === 'csv' ? 6 : 5);
    }
    // Without a session the export is the sign-in redirect, not data.
    const anonymous = await fetch(`${base}/app/admin/events.csv`, { redirect: 'manual' });
    expect(anonymous.status).toBe(303);
  });

  it('rejected events show the reason and the raw payload as text; conflicts and unpriced usage are the API lists', async () => {
    const page = await adminPage();
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await page.goto(`${base}/app/admin/rejected`);
    const rejected = await api('GET', '/admin/rejected-events');
    expect(rejected.body.data).toHaveLength(1);
    expect(await column(page, '#rejected-table', 4)).toEqual(['schema']);
    expect(await column(page, '#rejected-table', 5)).toEqual([rejected.body.data[0].reason]);
    expect(await page.locator('#rejected-table pre').textContent()).toBe(HOSTILE_PAYLOAD);
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toBe(0);

    await page.goto(`${base}/app/admin/conflicts`);
    const conflicts = await api('GET', '/admin/event-conflicts');
    expect(await column(page, '#conflicts-table', 2)).toEqual(conflicts.body.data.map((c: Json) => c.event_id));
    expect(await page.locator('#conflicts-table pre').textContent()).toBe(conflicts.body.data[0].raw_payload);

    await page.goto(`${base}/app/admin/unpriced`);
    const unpriced = await api('GET', '/admin/unpriced-usage');
    expect(unpriced.body.data).toEqual([expect.objectContaining({ model: 'mystery-model', account_id: A, events: 1, input_tokens: 777 })]);
    expect(await column(page, '#unpriced-table', 1)).toEqual(['mystery-model']);
    expect(await dataValues(page, '#unpriced-table tbody td:nth-child(4)')).toEqual(['777']);
  });

  it('adds a price version through the page, audited exactly as POST /admin/models/{id}/prices', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/prices`);
    expect(await page.locator('#immutable').textContent()).toMatch(/immutable/);
    await page.selectOption('#pv-model', 'deepseek-r1');
    await page.locator('#pv-from').fill(OCT.from);
    await page.locator('#pv-input').fill('1.25');
    await page.locator('#pv-output').fill('4');
    await page.locator('#pv-cache-read').fill('0.1');
    await submit(page, '#price-version-form', /done=price_version/);
    expect(await page.getByRole('status').first().textContent()).toMatch(/Price version added/);
    const model = (await api('GET', '/admin/models')).body.data.find((m: Json) => m.id === 'deepseek-r1');
    const version = model.prices.find((v: Json) => v.effective_from === '2026-10-01T00:00:00.000Z');
    expect(version).toMatchObject({ input_per_mtok: '1.25', output_per_mtok: '4', cache_read_per_mtok: '0.1', cache_write_per_mtok: null });
    const [entry] = await auditLog();
    expect(entry).toMatchObject({ action: 'price_version.create', actor_key_id: adminKeyId, target_type: 'price_version', target_id: version.id, before: null, after: version });
    expect(entry.request_id).toEqual(expect.any(String));
    // The same version again is the API's 409 (versions are immutable), shown as the error page.
    await page.goto(`${base}/app/admin/prices`);
    await page.selectOption('#pv-model', 'deepseek-r1');
    await page.locator('#pv-from').fill(OCT.from);
    for (const f of ['#pv-input', '#pv-output', '#pv-cache-read']) await page.locator(f).fill('9');
    const [again] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.locator('#price-version-form button[type=submit]').click()]);
    expect(again.status()).toBe(409);
    expect(await page.getByRole('alert').textContent()).toMatch(/immutable/);
  });

  it('reprices through the page: the dry run shows the API diff and writes nothing; apply is audited as POST /admin/reprice', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/reprice`);
    await page.locator('#from').fill(OCT.from);
    await page.locator('#to').fill(OCT.to);
    const entriesBefore = (await auditLog(1000)).length;
    await Promise.all([page.waitForSelector('#reprice-diff'), page.locator('#reprice-form button[type=submit]').click()]);
    const dry = await api('POST', '/admin/reprice', { from: OCT.from, to: OCT.to, dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body.totals.events_changed).toBe(8);
    expect(await column(page, '#reprice-diff', 1)).toEqual(dry.body.by_account_model.map((g: Json) => g.account_id));
    expect(await column(page, '#reprice-diff', 2)).toEqual(dry.body.by_account_model.map((g: Json) => g.model));
    expect(await dataValues(page, '#reprice-diff tbody td:nth-child(5)')).toEqual(dry.body.by_account_model.map((g: Json) => g.cost_before_usd));
    expect(await dataValues(page, '#reprice-diff tbody td:nth-child(6)')).toEqual(dry.body.by_account_model.map((g: Json) => g.cost_after_usd));
    expect(await dataValues(page, '#reprice-diff tfoot td:nth-child(5)')).toEqual([dry.body.totals.cost_after_usd]);
    await browser.checkAccessibility(page, 'reprice dry run');
    await browser.screenshot(page, 'admin-reprice-dry-run');
    // Neither dry run wrote anything.
    expect((await auditLog(1000)).length).toBe(entriesBefore);
    await Promise.all([page.waitForURL(/done=applied/), page.getByRole('button', { name: 'Apply this reprice' }).click()]);
    const [entry] = await auditLog();
    expect(entry).toMatchObject({
      action: 'usage.reprice',
      actor_key_id: adminKeyId,
      target_type: 'usage_events',
      target_id: `*@2026-10-01T00:00:00.000Z/2026-11-01T00:00:00.000Z`,
      before: { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z', account_id: null, cost_usd: dry.body.totals.cost_before_usd, events: 9 },
      after: { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z', account_id: null, cost_usd: dry.body.totals.cost_after_usd, events_changed: 8 },
    });
    const again = await api('POST', '/admin/reprice', { from: OCT.from, to: OCT.to });
    expect(again.body.totals).toMatchObject({ events_changed: 0, cost_before_usd: dry.body.totals.cost_after_usd });
  });

  it('closes October through the page, retries a failed Stripe sync from it, each audited as the API does', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/invoices?period=2026-10`);
    expect(await page.locator('#close-finalize').isChecked()).toBe(true);
    // Stripe refuses every invoice creation during the close: both invoices end sync_failed.
    stripe.inject({ match: 'POST /v1/invoices', mode: 'before_503', times: Infinity });
    await submit(page, '#close-form', /done=closed/);
    stripe.clearFaults();
    expect(await column(page, '#invoices-table', 1)).toEqual([A, B]);
    expect(await column(page, '#invoices-table', 3)).toEqual(['sync_failed', 'sync_failed']);
    await browser.checkAccessibility(page, 'invoices sync_failed');
    await browser.screenshot(page, 'admin-invoices-sync-failed');
    const [closed] = await auditLog();
    expect(closed).toMatchObject({ action: 'invoices.close', actor_key_id: adminKeyId, target_id: '2026-10' });

    // A's sync retried from the page, B's through the JSON API: the two audit entries differ only by their invoice.
    const invoiceOf = async (account: string) => (await api('GET', `/v1/invoices?account_id=${account}&period=2026-10`)).body.data[0];
    const [invA, invB] = [await invoiceOf(A), await invoiceOf(B)];
    await Promise.all([page.waitForURL(/done=retried/), page.getByRole('button', { name: `Retry the Stripe sync of ${invA.id}` }).click()]);
    expect((await api('POST', `/admin/invoices/${invB.id}/retry-sync`)).status).toBe(200);
    const [viaApi, viaPage] = await auditLog(2);
    const keysOf = (x: unknown) => (x && typeof x === 'object' ? Object.keys(x).sort() : x);
    for (const [entry, inv] of [
      [viaPage, invA],
      [viaApi, invB],
    ]) {
      expect(entry).toMatchObject({ action: 'invoices.retry_sync', actor_key_id: adminKeyId, target_type: viaApi.target_type, target_id: inv.id });
      expect([keysOf(entry.before), keysOf(entry.after)]).toEqual([keysOf(viaApi.before), keysOf(viaApi.after)]);
    }
    await page.reload();
    expect(await column(page, '#invoices-table', 3)).toEqual(['finalized', 'finalized']);
    for (const [i, account] of [A, B].entries()) {
      expect((await dataValues(page, `#invoices-table tbody tr:nth-child(${i + 1}) td:nth-child(4)`))[0]).toBe((await invoiceOf(account)).total_usd);
    }

    await page.goto(`${base}/app/admin/invoices/reconciliation?period=2026-10&stripe=false`);
    expect(await page.locator('#reconciliation-table tr.mismatch').count()).toBe(0);
    // Break B's rollups behind the application's back: the report must see it, and the page must show it.
    await db.pool.query(`UPDATE usage_hourly SET cost_usd = cost_usd + 1 WHERE account_id = $1 AND hour >= '2026-10-01' AND hour < '2026-11-01'`, [B]);
    try {
      const report = await api('GET', '/admin/reconciliation?period=2026-10&stripe=false');
      expect(report.body.accounts_detail.map((d: Json) => [d.account_id, d.mismatches.length > 0])).toEqual([
        [A, false],
        [B, true],
      ]);
      await page.reload();
      expect(await page.locator('#reconciliation-table tr.mismatch td:first-child').allTextContents()).toEqual([B]);
      expect(await page.locator('#reconciliation-table tr.mismatch').textContent()).toContain('raw events ≠ rollups');
      expect(await page.locator('#reconciliation-summary').textContent()).toMatch(/1 of 2 accounts/);
      await browser.checkAccessibility(page, 'reconciliation mismatch');
      await browser.screenshot(page, 'admin-reconciliation-mismatch');
    } finally {
      await db.pool.query(`UPDATE usage_hourly SET cost_usd = cost_usd - 1 WHERE account_id = $1 AND hour >= '2026-10-01' AND hour < '2026-11-01'`, [B]);
    }
  });

  it('creates an API key (shown once) and revokes it through the page, audited as the API does', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/keys`);
    await page.selectOption('#key-role', 'account');
    await page.locator('#key-account').fill(A);
    await page.locator('#key-name').fill('made on the page');
    await Promise.all([page.waitForSelector('#new-key'), page.locator('#create-key-form button[type=submit]').click()]);
    const key = await page.locator('#new-key').inputValue();
    expect(key).toMatch(/^tm_live_/);
    await browser.checkAccessibility(page, 'key created');
    const [created] = await auditLog();
    const listed = (await api('GET', `/admin/api-keys?account_id=${A}`)).body.data.find((k: Json) => k.name === 'made on the page');
    expect(created).toMatchObject({ action: 'api_key.create', actor_key_id: adminKeyId, target_type: 'api_key', target_id: listed.id, before: null, after: listed });
    expect(JSON.stringify(created)).not.toContain(key.slice(17));
    // The key works, and the list page never shows it again.
    expect((await api('GET', `/v1/usage/summary?from=${OCT.from}&to=${OCT.to}`, undefined, key)).status).toBe(200);
    await page.goto(`${base}/app/admin/keys`);
    expect(await page.content()).not.toContain(key);
    await Promise.all([page.waitForURL(/done=revoked/), page.getByRole('button', { name: `Revoke ${listed.prefix} (made on the page)` }).click()]);
    expect((await api('GET', `/v1/usage/summary?from=${OCT.from}&to=${OCT.to}`, undefined, key)).status).toBe(401);
    const [revoked] = await auditLog();
    const after = (await api('GET', `/admin/api-keys?account_id=${A}`)).body.data.find((k: Json) => k.id === listed.id);
    expect(after.revoked_at).not.toBeNull();
    expect(revoked).toMatchObject({ action: 'api_key.revoke', actor_key_id: adminKeyId, target_id: listed.id, after });
    expect(revoked.before.revoked_at).toBeNull();
  });

  it('adds an override and creates a dashboard link from the account page; the link signs a fresh browser in once', async () => {
    const page = await adminPage();
    await page.goto(`${base}/app/admin/accounts/${A}`);
    await page.locator('#d-percent').fill('12.5');
    await page.locator('#d-from').fill('2026-12-01T00:00:00Z');
    await submit(page, '#discount-form', /done=override/);
    const [override] = (await api('GET', `/admin/accounts/${A}/price-overrides`)).body.data;
    expect(override).toMatchObject({ kind: 'discount', model_id: null, discount_percent: '12.5', effective_to: null });
    expect(await column(page, '#overrides-table', 1)).toEqual([override.id]);
    const [entry] = await auditLog();
    expect(entry).toMatchObject({ action: 'price_override.create', actor_key_id: adminKeyId, target_type: 'price_override', target_id: override.id, before: null, after: override });

    await Promise.all([page.waitForSelector('#link-url'), page.getByRole('button', { name: 'Create a dashboard link' }).click()]);
    const url = await page.locator('#link-url').inputValue();
    await browser.checkAccessibility(page, 'dashboard link created');
    const [linkEntry] = await auditLog();
    expect(linkEntry).toMatchObject({ action: 'dashboard_link.create', actor_key_id: adminKeyId, target_type: 'account', target_id: A, before: null });
    expect(JSON.stringify(linkEntry)).not.toContain(new URL(url).pathname.split('/').pop()!);
    const link = `${base}${new URL(url).pathname}`;
    const fresh = await browser.newPage(base);
    await fresh.goto(link);
    await fresh.waitForURL(`${base}/app`);
    expect(await fresh.locator('main').textContent()).toContain(A);
    expect((await fresh.goto(`${base}/app/admin`))!.status()).toBe(404);
    const again = await browser.newPage(base);
    expect((await again.goto(link))!.status()).toBe(404);
    expect(await again.context().cookies()).toEqual([]);
  });

  it('an admin page costs the same few statements whatever the range (counted on the API process pool)', async () => {
    const page = await adminPage();
    const pool = app.get<Database>(DATABASE).pool;
    const original = pool.query.bind(pool);
    let statements: string[] = [];
    // A counting wrapper around the real pool (every statement still runs against Postgres).
    (pool as unknown as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
      statements.push(typeof config === 'string' ? config : (config as { text: string }).text);
      return (original as (...a: unknown[]) => unknown)(config, ...rest);
    };
    // The session guard's reads and the background freshness refresh are the same on every page.
    const counted = async (path: string) => {
      statements = [];
      expect((await page.goto(`${base}${path}`))!.status()).toBe(200);
      // Not the page's: session and key bookkeeping, and the API's background refreshes.
      return statements.filter((t) => !/web_sessions|UPDATE api_keys SET last_used_at/.test(t) && !BACKGROUND_STATEMENTS.test(t)).length;
    };
    try {
      const ranges = [
        { from: '2026-10-05T00:00:00Z', to: '2026-10-06T00:00:00Z' },
        { from: '2025-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' },
      ];
      const perRange = async (path: (r: { from: string; to: string }) => string) => {
        const out: number[] = [];
        for (const r of ranges) out.push(await counted(path(r)));
        return out;
      };
      // The ranking, and the names of its rows (an account search adds one).
      expect(await perRange((r) => `/app/admin?from=${r.from}&to=${r.to}`)).toEqual([2, 2]);
      expect(await counted(`/app/admin?from=${OCT.from}&to=${OCT.to}&q=acme`)).toBe(3);
      expect(await perRange((r) => `/app/admin/events?from=${r.from}&to=${r.to}&limit=1000`)).toEqual([1, 1]);
      expect(await perRange((r) => `/app/admin/unpriced?from=${r.from}&to=${r.to}`)).toEqual([1, 1]);
      expect(await perRange((r) => `/app/admin/rejected?from=${r.from}&to=${r.to}`)).toEqual([1, 1]);
      expect(await counted('/app/admin/audit?limit=1000')).toBe(1);
      expect(await counted(`/app/admin/accounts/${A}`)).toBe(5); // the account; its overrides (after checking it exists); models and versions
      expect(await counted('/app/admin/prices')).toBe(2); // models, versions
      expect(await counted('/app/admin/invoices?period=2026-10')).toBe(1);
      expect(await counted('/app/admin/keys')).toBe(1);
    } finally {
      (pool as unknown as { query: unknown }).query = original;
    }
  });

  it('an auditor reads every admin page, sees no write form, and a forged POST is refused 403', async () => {
    const page = await adminPage(auditorKey);
    for (const [name, path] of PAGES) {
      const res = await page.goto(`${base}${path}`);
      expect([name, res!.status()]).toEqual([name, 200]);
      expect([name, await page.locator('main form[method=post]').count()]).toEqual([name, 0]);
    }
    const entries = (await auditLog(1000)).length;
    const csrf = await page.locator('header input[name=_csrf]').getAttribute('value');
    const [cookie] = await page.context().cookies();
    const forged = async (path: string, fields: Record<string, string>) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { cookie: `tm_session=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded', origin: base },
        body: new URLSearchParams({ _csrf: csrf!, ...fields }).toString(),
        redirect: 'manual',
      });
    const tries: [string, Record<string, string>][] = [
      ['/app/admin/prices', { model_id: 'gpt-4o', effective_from: '2027-01-01T00:00:00Z', input_per_mtok: '1', output_per_mtok: '1', cache_read_per_mtok: '1' }],
      ['/app/admin/keys', { role: 'admin' }],
      ['/app/admin/reprice/apply', { from: OCT.from, to: OCT.to }],
      ['/app/admin/invoices/close', { period: '2026-11', force: 'true' }],
      [`/app/admin/accounts/${A}/dashboard-links`, {}],
    ];
    for (const [path, fields] of tries) expect([path, (await forged(path, fields)).status]).toEqual([path, 403]);
    expect((await auditLog(1000)).length).toBe(entries);
  });

  it('an account session gets the 404 page on the admin pages', async () => {
    const page = await adminPage(accountKey);
    for (const path of ['/app/admin', '/app/admin/prices', `/app/admin/accounts/${A}`, '/app/admin/events.csv']) {
      const res = await page.goto(`${base}${path}`);
      expect([path, res!.status()]).toEqual([path, 404]);
      expect(await page.locator('h1').textContent()).toBe('Not found');
    }
  });
});
