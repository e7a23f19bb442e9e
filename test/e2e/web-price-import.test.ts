import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Page } from 'playwright-core';
import type { Database } from '@tokenmeter/db';
import { insertApiKey, startApi } from '../helpers/api-app';
import { openBrowser, signIn, type TestBrowser } from '../helpers/browser';
import { uniqueName } from '../helpers/kafka';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

// Entries cut verbatim from LiteLLM 1.110.2's model_prices_and_context_window_backup.json.
const LITELLM = join(__dirname, '..', '..', 'libs/billing/src/__fixtures__/litellm-model-prices.json');
const DEC = '2026-12-01T00:00:00Z';
const MAPPING = { 'deepseek-r1': 'deepseek-reasoner', 'qwen-turbo': 'dashscope/qwen-turbo' };

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Importing a price map from the dashboard in a real Chromium: upload, the dry run's diff equals
 * POST /admin/prices/import's for the same file, nothing is written until "Apply", and the apply
 * leaves exactly the audit entries and versions the API route leaves. Auditors get no form.
 */
describe('web dashboard: price map import', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let browser: TestBrowser;
  let adminKey: string;
  let auditorKey: string;

  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  const bookRows = async () => (await db.pool.query('SELECT model_id, effective_from, input_per_mtok::text, output_per_mtok::text FROM price_versions ORDER BY id')).rows;
  const auditRows = async () => (await db.pool.query("SELECT action, target_id, actor_key_id, after FROM audit_log ORDER BY id")).rows;

  async function previewImport(page: Page, file: string, mapping: string): Promise<void> {
    await page.goto(`${base}/app/admin/prices`);
    await Promise.all([page.waitForURL(/\/app\/admin\/prices\/import$/), page.getByRole('link', { name: 'Import prices from a LiteLLM or OpenRouter price map' }).click()]);
    await browser.checkAccessibility(page, 'price import form');
    await page.setInputFiles('#import-file', file);
    await page.selectOption('#import-format', 'litellm');
    await page.getByLabel('Effective from (optional)').fill(DEC);
    await page.getByLabel('Model mapping (optional)').fill(mapping);
    await page.getByRole('button', { name: 'Preview (dry run)' }).click();
  }

  const previousTopic = process.env.KAFKA_USAGE_TOPIC;

  beforeAll(async () => {
    // A topic of its own (the shared broker's gateway.usage.v1 is other suites').
    process.env.KAFKA_USAGE_TOPIC = uniqueName('usage.price-import');
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    ({ app, base } = await startApi());
    adminKey = await insertApiKey(db, 'admin');
    auditorKey = await insertApiKey(db, 'auditor');
    browser = await openBrowser();
  });
  afterAll(async () => {
    if (previousTopic === undefined) delete process.env.KAFKA_USAGE_TOPIC;
    else process.env.KAFKA_USAGE_TOPIC = previousTopic;
    await browser?.close();
    await app?.close();
    await db?.close();
  });

  it('previews the same diff as the API, writes nothing, then applies it with the API’s audit entries', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, adminKey);
    const [versionsBefore, auditBefore] = [await bookRows(), await auditRows()];
    await previewImport(page, LITELLM, Object.entries(MAPPING).map(([id, key]) => `${id}=${key}`).join('\n'));
    await page.waitForSelector('#import-diff');

    const dry = await api('POST', '/admin/prices/import', { format: 'litellm', content: readFileSync(LITELLM, 'utf8'), effective_at: DEC, models: MAPPING });
    expect(dry.status).toBe(200);
    const expected = dry.body.models.flatMap((m: Json) => m.changes.map((c: Json) => [m.model_id, c.field, c.current ?? 'not set', c.proposed ?? 'not set']));
    const rows = await page.locator('#import-diff tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
    expect(rows).toEqual(expected);
    expect(rows).toContainEqual(['deepseek-r1', 'input_per_mtok', '0.5714', '0.28']);
    const statuses = await page.locator('#import-models tbody td:nth-child(3)').allTextContents();
    expect(statuses).toEqual(['Skipped', 'Skipped', 'Changed', 'Skipped', 'Unchanged', 'Unchanged', 'New model']);
    expect(await page.getByRole('status').textContent()).toMatch(/^Dry run: nothing has changed\. 11 models in the file/);
    await browser.checkAccessibility(page, 'price import dry run');
    await browser.screenshot(page, 'admin-price-import-dry-run');
    expect([await bookRows(), await auditRows()]).toEqual([versionsBefore, auditBefore]);

    // The apply form carries only the entries the preview used, numbers as the file wrote them.
    const carried = JSON.parse(await page.locator('#apply-form input[name=content]').inputValue());
    expect(Object.keys(carried).sort()).toEqual(['dashscope/qwen-turbo', 'deepseek-reasoner', 'gpt-4o', 'gpt-4o-mini']);
    expect(await page.locator('#apply-form input[name=content]').inputValue()).toContain('"input_cost_per_token":2.8e-07');

    await Promise.all([page.waitForURL(/\/app\/admin\/prices\?done=import$/), page.getByRole('button', { name: 'Apply this import' }).click()]);
    expect(await page.getByRole('status').first().textContent()).toMatch(/^Import applied/);
    const added = (await bookRows()).slice(versionsBefore.length);
    expect(added).toEqual([
      { model_id: 'deepseek-r1', effective_from: new Date(DEC), input_per_mtok: '0.2800000000', output_per_mtok: '0.4200000000' },
      { model_id: 'qwen-turbo', effective_from: new Date(DEC), input_per_mtok: '0.0500000000', output_per_mtok: '0.2000000000' },
    ]);
    const adminKeyId = (await db.pool.query('SELECT id FROM api_keys WHERE prefix = $1', [adminKey.slice(0, 16)])).rows[0].id;
    const models = (await api('GET', '/admin/models')).body.data;
    const r1 = models.find((m: Json) => m.id === 'deepseek-r1');
    const qwen = models.find((m: Json) => m.id === 'qwen-turbo');
    expect((await auditRows()).slice(auditBefore.length)).toEqual([
      { action: 'price_version.create', target_id: r1.prices.at(-1).id, actor_key_id: adminKeyId, after: r1.prices.at(-1) },
      { action: 'model.create', target_id: 'qwen-turbo', actor_key_id: adminKeyId, after: { ...qwen, prices: [] } },
      { action: 'price_version.create', target_id: qwen.prices[0].id, actor_key_id: adminKeyId, after: qwen.prices[0] },
    ]);
    await browser.screenshot(page, 'admin-price-import-applied');
    expect(browser.foreignRequests(page)).toEqual([]);
  });

  it('a file that is not JSON is the API’s 400, shown as the error page; nothing to apply when nothing changes', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, adminKey);
    const bad = join(tmpdir(), `tokenmeter-not-json-${process.pid}.json`);
    writeFileSync(bad, '{"gpt-4o": {"input_cost_per_token": 2.5e-06,');
    await previewImport(page, bad, '');
    await page.waitForSelector('[role=alert]');
    expect(await page.getByRole('alert').textContent()).toMatch(/content: is not valid JSON/);

    await previewImport(page, LITELLM, 'deepseek-r1=deepseek-reasoner');
    await page.waitForSelector('#import-diff');
    // The first test applied exactly this: the book has these prices now.
    expect(await page.locator('#import-diff tbody td').allTextContents()).toEqual(['Nothing changes: the book already has these prices and limits.']);
    expect(await page.locator('#apply-form').count()).toBe(0);
  });

  it('an auditor sees the import page without its form', async () => {
    const page = await browser.newPage(base);
    await signIn(page, base, auditorKey);
    const res = await page.goto(`${base}/app/admin/prices/import`);
    expect(res!.status()).toBe(200);
    expect(await page.locator('main form[method=post]').count()).toBe(0);
    expect(await page.locator('main').textContent()).toContain('Auditor sessions are read-only');
    await browser.checkAccessibility(page, 'price import (auditor)');
  });
});
