import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Page } from 'playwright-core';
import { Decimal } from '@tokenmeter/billing';
import { DATABASE, type Database } from '@tokenmeter/db';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { BACKGROUND_STATEMENTS, client, insertApiKey, qs, startApi } from '../helpers/api-app';
import { dataValues, openBrowser, signIn, type TestBrowser } from '../helpers/browser';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const A = 'acct_web_acct_a';
const B = 'acct_web_acct_b';
const OCT = { from: '2026-10-01T00:00:00.000Z', to: '2026-11-01T00:00:00.000Z' };
const MODELS = ['deepseek-r1', 'gpt-4o', 'claude-sonnet-4', 'gpt-4o-mini'] as const;
const KEYS = ['key_a1', 'key_a2', null] as const;

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** 60 events of A over October (4 models, 2 keys + none, odd token counts), one unpriced, 3 of B. */
function dataset(): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  for (let i = 0; i < 60; i++) {
    events.push(
      aUsageEvent({
        event_id: `evt_wa_${String(i).padStart(3, '0')}`,
        account_id: A,
        api_key_id: KEYS[i % 3],
        model: MODELS[i % 4],
        request_id: `req_wa_${i}`,
        occurred_at: new Date(Date.parse(OCT.from) + i * 11.3 * 3_600_000 + i * 7_001).toISOString(),
        usage: { input_tokens: 1001 + 37 * i, output_tokens: 203 + 11 * i, cache_read_tokens: 7 * i, cache_write_tokens: i % 5 === 0 ? 13 * i : 0 },
      }),
    );
  }
  events.push(aUsageEvent({ event_id: 'evt_wa_unpriced', account_id: A, api_key_id: 'key_a1', model: 'mystery-model', occurred_at: '2026-10-20T05:15:00.000Z' }));
  for (let i = 0; i < 3; i++) {
    events.push(aUsageEvent({ event_id: `evt_wb_${i}`, account_id: B, model: 'gpt-4o', occurred_at: `2026-10-1${i}T10:00:00.000Z` }));
  }
  return events;
}

/**
 * The account pages (usage, requests, receipts, invoices) in a real Chromium against the JSON API
 * on the same data: the numbers on each page are the API's for the same query (compared through
 * the exact values in <data>), breakdowns sum exactly to their totals, the CSV download is the
 * table, another account's request or invoice is the 404 page of a missing one, and every page
 * passes the axe check with nothing fetched from elsewhere.
 */
describe('web dashboard: account pages', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let browser: TestBrowser;
  let adminKey: string;
  let accountKey: string;
  let page: Page;
  let invoiceA: string;
  let invoiceB: string;

  async function api(path: string, key = accountKey): Promise<Json> {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    return res.json();
  }

  async function admin(method: string, path: string, body: unknown): Promise<Json> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBeLessThan(300);
    return res.json();
  }

  /** Every cell of a table body as its exact value: <data value>, else <time datetime>, else its text. */
  async function tableCells(selector: string, part = 'tbody'): Promise<string[][]> {
    return page.locator(`${selector} ${part} tr`).evaluateAll((rows) =>
      rows.map((tr) =>
        Array.from(tr.children).map((td) => {
          const data = td.querySelector('data');
          if (data) return (data as HTMLDataElement).value;
          const time = td.querySelector('time');
          if (time) return time.getAttribute('datetime') ?? '';
          return (td.textContent ?? '').trim();
        }),
      ),
    );
  }

  async function open(path: string, status = 200): Promise<void> {
    const res = await page.goto(`${base}${path}`);
    expect(res!.status()).toBe(status);
  }

  const sum = (values: string[]) => values.reduce((s, v) => s.plus(v), new Decimal(0));

  beforeAll(async () => {
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    ({ app, base } = await startApi());
    adminKey = await insertApiKey(db, 'admin');
    for (const id of [A, B]) await admin('POST', '/admin/accounts', { id, name: id });
    // A discount on one model, so a receipt and the invoice show an adjustment line.
    await admin('POST', `/admin/accounts/${A}/price-overrides`, { kind: 'discount', model_id: 'gpt-4o', discount_percent: '12.5', effective_from: '2026-09-01T00:00:00Z' });
    const ingested = await client(base).ingest(dataset());
    expect(ingested.summary.accepted).toBe(64);
    // Close October for both accounts (pushed to stripe-mock), so receipts have an invoice.
    const closed = await admin('POST', '/admin/invoices/close', { period: '2026-10', force: true });
    const ids = Object.fromEntries(closed.invoices.map((i: Json) => [i.account_id, i.invoice_id]));
    invoiceA = ids[A];
    invoiceB = ids[B];
    expect(invoiceA).toBeTruthy();
    expect(invoiceB).toBeTruthy();
    accountKey = await insertApiKey(db, 'account', A);
    browser = await openBrowser();
    page = await browser.newPage(base);
    await signIn(page, base, accountKey);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await db?.close();
  });

  afterEach(() => {
    expect(browser.foreignRequests(page)).toEqual([]);
  });

  it('usage by model: totals, breakdowns and the time table are the API numbers; breakdown rows sum exactly to the total', async () => {
    const query = { ...OCT, granularity: 'day', group_by: 'model' };
    await open(`/app/usage${qs(query)}`);
    const summary = await api(`/v1/usage/summary${qs(OCT)}`);
    const series = await api(`/v1/usage/timeseries${qs(query)}`);
    const t = summary.totals;
    expect(t.requests).toBe(61);
    expect(await dataValues(page, '#totals')).toEqual([t.cost_usd, String(t.requests), String(t.unpriced_requests)]);
    // Totals by token type: the summary's per-type costs, summing exactly to the total.
    const byType = await tableCells('#totals-by-type');
    expect(byType.map((r) => r[2])).toEqual([t.input_cost_usd, t.output_cost_usd, t.cache_read_cost_usd, t.cache_write_cost_usd]);
    expect(byType.map((r) => r[1])).toEqual([t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens].map(String));
    expect(sum(byType.map((r) => r[2])).equals(t.cost_usd)).toBe(true);
    // By model and by key: every row of the summary, summing exactly (Decimal) to the total under them.
    for (const [table, rows, label] of [
      ['#by-model-table', summary.by_model, (r: Json) => r.model],
      ['#by-key-table', summary.by_api_key, (r: Json) => r.api_key_id ?? '(no key)'],
    ] as const) {
      const cells = await tableCells(table);
      expect(cells.map((c) => [c[0], c[1], c[6]])).toEqual(rows.map((r: Json) => [label(r), String(r.requests), r.cost_usd]));
      const [foot] = await tableCells(table, 'tfoot');
      expect(foot[foot.length - 1]).toBe(t.cost_usd);
      expect(sum(cells.map((c) => c[6])).equals(foot[foot.length - 1])).toBe(true);
      expect(cells.reduce((n, c) => n + Number(c[1]), 0)).toBe(t.requests);
    }
    // The time table is the API's buckets, row for row.
    const table = await tableCells('#usage-table');
    expect(table).toEqual(
      series.buckets.map((b: Json) =>
        [b.start, b.group, b.requests, b.unpriced_requests, b.input_tokens, b.output_tokens, b.cache_read_tokens, b.cache_write_tokens, b.cost_usd].map(String),
      ),
    );
    await browser.checkAccessibility(page, 'usage by model');
    await browser.screenshot(page, 'usage-by-model');
  });

  it('the CSV download is exactly the table in view, with exact decimals', async () => {
    for (const query of [
      { ...OCT, granularity: 'day', group_by: 'api_key' },
      { ...OCT, granularity: 'hour', group_by: 'token_type', model: 'gpt-4o' },
    ]) {
      await open(`/app/usage${qs(query)}`);
      const href = await page.locator('a[href^="/app/usage.csv"]').getAttribute('href');
      const res = await page.request.get(`${base}${href}`);
      expect(res.status()).toBe(200);
      expect(res.headers()['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.headers()['content-disposition']).toMatch(/^attachment; filename="tokenmeter-usage-[A-Za-z0-9._-]+\.csv"$/);
      const text = await res.text();
      expect(text.endsWith('\r\n')).toBe(true);
      const [header, ...rows] = text.slice(0, -2).split('\r\n').map((line) => line.split(','));
      const table = await tableCells('#usage-table');
      expect(rows.length).toBeGreaterThan(0);
      // The "(no key)" label is the empty field in the file; everything else is the same value.
      expect(rows).toEqual(table.map((r) => r.map((c) => (c === '(no key)' ? '' : c))));
      expect(header[0]).toBe('start');
      expect(header).toHaveLength(table[0].length);
    }
  });

  it('group by token type with model and key filters: per-bucket per-type costs equal the API, and sum to each bucket cost', async () => {
    const filter = { model: 'gpt-4o', api_key_id: 'key_a2' };
    const query = { ...OCT, granularity: 'hour', group_by: 'token_type', ...filter };
    await open(`/app/usage${qs(query)}`);
    const series = await api(`/v1/usage/timeseries${qs({ ...OCT, granularity: 'hour', ...filter })}`);
    const summary = await api(`/v1/usage/summary${qs({ ...OCT, ...filter })}`);
    expect(summary.totals.requests).toBeGreaterThan(0);
    const table = await tableCells('#usage-table');
    expect(table).toEqual(
      series.buckets.map((b: Json) =>
        [
          b.start,
          b.input_tokens, b.input_cost_usd, b.output_tokens, b.output_cost_usd,
          b.cache_read_tokens, b.cache_read_cost_usd, b.cache_write_tokens, b.cache_write_cost_usd, b.cost_usd,
        ].map(String),
      ),
    );
    for (const row of table) expect(sum([row[2], row[4], row[6], row[8]]).equals(row[9])).toBe(true);
    expect(await dataValues(page, '#totals')).toEqual([summary.totals.cost_usd, String(summary.totals.requests), String(summary.totals.unpriced_requests)]);
    // Filtered: the breakdowns hold only that model and key.
    expect((await tableCells('#by-model-table')).map((r) => r[0])).toEqual(['gpt-4o']);
    expect((await tableCells('#by-key-table')).map((r) => r[0])).toEqual(['key_a2']);
    // The filters are in the URL and in the form.
    expect(await page.locator('#model').inputValue()).toBe('gpt-4o');
    expect(await page.locator('#group_by').inputValue()).toBe('token_type');
    await browser.checkAccessibility(page, 'usage by token type');
    await browser.screenshot(page, 'usage-by-token-type');
  });

  it('the usage form round-trips through the URL; bad filters are the API 400 as a page', async () => {
    await open(`/app/usage${qs(OCT)}`);
    await page.locator('#group_by').selectOption('api_key');
    await page.locator('#model').fill('deepseek-r1');
    await Promise.all([page.waitForURL(/group_by=api_key/), page.getByRole('button', { name: 'Show' }).click()]);
    const url = new URL(page.url());
    expect(url.searchParams.get('model')).toBe('deepseek-r1');
    expect(url.searchParams.get('api_key_id')).toBe(''); // sent empty by the form: no filter, not a 400
    const summary = await api(`/v1/usage/summary${qs({ ...OCT, model: 'deepseek-r1' })}`);
    expect(await dataValues(page, '#totals')).toEqual([summary.totals.cost_usd, String(summary.totals.requests), String(summary.totals.unpriced_requests)]);
    await open(`/app/usage${qs({ from: '2026-10-01T00:30:00Z', to: OCT.to })}`, 400);
    expect(await page.getByRole('alert').textContent()).toMatch(/^from: must be a whole UTC hour/);
    // With no range: this month by day.
    await open('/app/usage');
    expect(await page.locator('#granularity').inputValue()).toBe('day');
    await browser.checkAccessibility(page, 'usage this month');
  });

  it('the request log pages newest first with next_cursor, as /v1/usage/events, and filters by model, key and request id', async () => {
    const query = { ...OCT, model: 'claude-sonnet-4', limit: '4' };
    await open(`/app/requests${qs(query)}`);
    let cursor: string | undefined;
    const seen: string[] = [];
    for (let n = 0; n < 10; n++) {
      const json = await api(`/v1/usage/events${qs({ ...query, cursor })}`);
      const rows = await tableCells('#requests-table');
      if (json.data.length === 0) break;
      expect(rows.map((r) => [r[0], r[1], r[2], r[9]])).toEqual(json.data.map((e: Json) => [e.occurred_at, e.event_id, e.model, e.costs.cost_usd]));
      seen.push(...rows.map((r) => r[1]));
      cursor = json.next_cursor ?? undefined;
      const next = page.getByRole('link', { name: 'Next page' });
      if (!cursor) {
        expect(await next.count()).toBe(0);
        break;
      }
      await Promise.all([page.waitForURL(/cursor=/), next.click()]);
    }
    expect(seen).toHaveLength(15);
    expect(new Set(seen).size).toBe(15);
    // By request id: exactly that event.
    await open(`/app/requests${qs({ ...OCT, request_id: 'req_wa_17' })}`);
    expect((await tableCells('#requests-table')).map((r) => r[1])).toEqual(['evt_wa_017']);
    // By key.
    await open(`/app/requests${qs({ ...OCT, api_key_id: 'key_a2', limit: '1000' })}`);
    const json = await api(`/v1/usage/events${qs({ ...OCT, api_key_id: 'key_a2', limit: '1000' })}`);
    expect((await tableCells('#requests-table')).map((r) => r[1])).toEqual(json.data.map((e: Json) => e.event_id));
    await browser.checkAccessibility(page, 'requests');
    await browser.screenshot(page, 'requests');
  });

  it('a receipt shows tokens, the price version and discount in force, exact costs and the invoice lines it was billed on', async () => {
    // evt_wa_001: gpt-4o, discounted 12.5%.
    await open('/app/requests/evt_wa_001');
    const r = await api('/v1/usage/events/evt_wa_001');
    expect(r.price_override).toMatchObject({ kind: 'discount', discount_percent: '12.5' });
    const costs = await tableCells('#receipt-costs');
    expect(costs.map((c) => [c[1], c[3]])).toEqual([
      [String(r.tokens.input_tokens), r.costs.input_cost_usd],
      [String(r.tokens.output_tokens), r.costs.output_cost_usd],
      [String(r.tokens.cache_read_tokens), r.costs.cache_read_cost_usd],
      [String(r.tokens.cache_write_tokens), r.costs.cache_write_cost_usd],
    ]);
    const [foot] = await tableCells('#receipt-costs', 'tfoot');
    expect(foot[3]).toBe(r.costs.cost_usd);
    // Exact, and shown as such (not rounded to cents).
    expect(await page.locator('#receipt-costs tfoot data').last().textContent()).toBe(`$${r.costs.cost_usd}`);
    const price = await tableCells('#receipt-price');
    expect(price.map((c) => c[1])).toEqual([r.price_version.input_per_mtok, r.price_version.output_per_mtok, r.price_version.cache_read_per_mtok, r.price_version.cache_write_per_mtok ?? 'the input rate']);
    expect(await page.locator('#receipt-override').textContent()).toContain('12.5%');
    // Billed: the link to its invoice, and the lines of its model and month, with the discount line.
    expect(r.invoice_id).toBe(invoiceA);
    expect(await page.locator('#receipt-invoice a').getAttribute('href')).toBe(`/app/invoices/${invoiceA}`);
    const invoice = await api(`/v1/invoices/${invoiceA}`);
    const lines = await tableCells('#receipt-lines');
    const expected = invoice.lines.filter((l: Json) => l.model === 'gpt-4o' && l.service_period === '2026-10' && (l.token_type === 'discount' || Number(r.tokens[`${l.token_type}_tokens`]) > 0));
    expect(lines.map((l) => [l[0], l[3]]).sort()).toEqual(expected.map((l: Json) => [l.description, l.amount_exact_usd]).sort());
    expect(lines.some((l) => l[1] === 'discount')).toBe(true);
    await browser.checkAccessibility(page, 'receipt');
    await browser.screenshot(page, 'receipt');

    // An unpriced event: no costs, and said so.
    await open('/app/requests/evt_wa_unpriced');
    expect(await page.getByRole('status').filter({ hasText: 'Not priced' }).count()).toBe(1);
  });

  it("another account's request or invoice is the same 404 page as a missing one", async () => {
    const pages: Record<string, string> = {};
    for (const path of ['/app/requests/evt_wb_0', '/app/requests/evt_no_such', `/app/invoices/${invoiceB}`, '/app/invoices/inv_no_such']) {
      await open(path, 404);
      pages[path] = `${await page.locator('h1').textContent()} | ${await page.getByRole('alert').textContent()}`;
    }
    expect(pages['/app/requests/evt_wb_0']).toBe('Not found | event not found');
    expect(pages['/app/requests/evt_wb_0']).toBe(pages['/app/requests/evt_no_such']);
    expect(pages[`/app/invoices/${invoiceB}`]).toBe(`Not found | invoice ${invoiceB} not found`);
    // ... and B's data is not reachable through ?account_id= either.
    await open(`/app/usage?account_id=${B}`, 404);
    await open(`/app/requests?account_id=${B}`, 404);
    await open(`/app/invoices?account_id=${B}`, 404);
    await browser.checkAccessibility(page, 'not found');
  });

  it('invoices: the list and the invoice are /v1/invoices; exact line amounts sum to the exact total, cents to the billed total', async () => {
    await open('/app/invoices');
    const list = await api('/v1/invoices');
    const rows = await tableCells('#invoices-table');
    expect(rows.map((r) => [r[0], r[1], r[2], r[3]])).toEqual(list.data.map((i: Json) => [i.period, i.status, i.total_usd, i.total_exact_usd]));
    await browser.checkAccessibility(page, 'invoices');
    await browser.screenshot(page, 'invoices');

    await Promise.all([page.waitForURL(/\/app\/invoices\/inv_/), page.getByRole('link', { name: '2026-10' }).click()]);
    const invoice = await api(`/v1/invoices/${invoiceA}`);
    const lines = await tableCells('#invoice-lines');
    expect(lines.map((l) => [l[1], l[2], l[3], l[5], l[6]])).toEqual(
      invoice.lines.map((l: Json) => [
        l.service_period,
        l.description,
        String(l.quantity),
        l.amount_exact_usd,
        new Decimal(l.amount_minor).div(100).toFixed(2),
      ]),
    );
    expect(lines.filter((l) => l[0] === 'Discount')).toHaveLength(1);
    const [foot] = await tableCells('#invoice-lines', 'tfoot');
    expect(foot.slice(-2)).toEqual([invoice.total_exact_usd, invoice.total_usd]);
    expect(sum(lines.map((l) => l[5])).equals(invoice.total_exact_usd)).toBe(true);
    expect(sum(lines.map((l) => l[6])).equals(invoice.total_usd)).toBe(true);
    // Stripe: the hosted page when Stripe gave one, else its invoice id.
    if (invoice.hosted_invoice_url) expect(await page.locator('#hosted-invoice').getAttribute('href')).toBe(invoice.hosted_invoice_url);
    else expect(await page.locator('#invoice-facts').textContent()).toContain(invoice.stripe_invoice_id ?? 'not sent to Stripe yet');
    await browser.checkAccessibility(page, 'invoice');
    await browser.screenshot(page, 'invoice');
  });

  it('a page costs the same few statements whatever the range (counted on the API process pool)', async () => {
    const pool = app.get<Database>(DATABASE).pool;
    const original = pool.query.bind(pool);
    let statements: string[] = [];
    // A counting wrapper around the real pool (every statement still runs against Postgres).
    (pool as unknown as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
      const text = typeof config === 'string' ? config : (config as { text: string }).text;
      statements.push(text);
      return (original as (...a: unknown[]) => unknown)(config, ...rest);
    };
    // Sessions (resolve, touch) are the guard's, the same on every page, and the API's background
    // refreshes (BACKGROUND_STATEMENTS) land at any moment: the page's own reads are the rest.
    const counted = async (path: string) => {
      statements = [];
      await open(path);
      return statements.filter((t) => !/web_sessions|api_keys/.test(t) && !BACKGROUND_STATEMENTS.test(t)).length;
    };
    try {
      const day = await counted(`/app/usage${qs({ from: '2026-10-05T00:00:00Z', to: '2026-10-06T00:00:00Z', group_by: 'model' })}`);
      const long = await counted(`/app/usage${qs({ from: '2025-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z', granularity: 'hour', group_by: 'token_type' })}`);
      expect(long).toBe(day);
      expect(day).toBe(2); // the summary, the buckets
      const csv = await page.request.get(`${base}/app/usage.csv${qs({ from: '2025-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z', granularity: 'hour' })}`);
      expect(csv.status()).toBe(200);
      const firstPage = await counted(`/app/requests${qs({ ...OCT, limit: '5' })}`);
      const wide = await counted(`/app/requests${qs({ from: '2025-11-01T00:00:00Z', to: '2026-11-01T00:00:00Z', limit: '1000' })}`);
      expect(wide).toBe(firstPage);
      expect(firstPage).toBe(1);
      expect(await counted('/app/requests/evt_wa_001')).toBe(3); // the event (joined to its price), its invoice, the lines
      expect(await counted(`/app/invoices/${invoiceA}`)).toBe(2);
      expect(await counted('/app/invoices')).toBe(1);
    } finally {
      (pool as unknown as { query: unknown }).query = original;
    }
  });

  it('an admin session opens the account pages with ?account_id= and sees the same numbers', async () => {
    const adminPage = await browser.newPage(base);
    await signIn(adminPage, base, adminKey);
    await adminPage.goto(`${base}/app/usage${qs({ ...OCT, account_id: A })}`);
    const summary = await api(`/v1/usage/summary${qs({ ...OCT, account_id: A })}`, adminKey);
    expect(await dataValues(adminPage, '#totals')).toEqual([summary.totals.cost_usd, String(summary.totals.requests), String(summary.totals.unpriced_requests)]);
    // Links stay on that account.
    expect(await adminPage.locator('#by-model-table tbody a').first().getAttribute('href')).toContain(`account_id=${A}`);
    const receipt = await adminPage.goto(`${base}/app/requests/evt_wb_0?account_id=${A}`);
    expect(receipt!.status()).toBe(404);
    const own = await adminPage.goto(`${base}/app/requests/evt_wb_0?account_id=${B}`);
    expect(own!.status()).toBe(200);
    expect(browser.foreignRequests(adminPage)).toEqual([]);
  });
});
