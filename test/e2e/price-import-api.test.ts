import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prefixOfApiKey } from '@tokenmeter/auth';
import { aUsageEvent } from '../factories/usage-events';
import { client, insertApiKey, useAdminApi } from '../helpers/api-app';
import { useEnv } from '../helpers/env';
import { uniqueName } from '../helpers/kafka';

jest.setTimeout(60_000);

const FIXTURES = join(__dirname, '..', '..', 'libs/billing/src/__fixtures__');
// Entries cut verbatim from LiteLLM 1.110.2's model_prices_and_context_window_backup.json.
const LITELLM = readFileSync(join(FIXTURES, 'litellm-model-prices.json'), 'utf8');
const DEC = '2026-12-01T00:00:00.000Z';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * POST /admin/prices/import: the file's text in, the CLI's plan out (same service). A dry run
 * changes nothing; applying adds the versions, audited with the caller's key and request id, and
 * the ingest path prices new usage with them; bad input is a 400 (or 413) in the error shape.
 */
describe('admin API: POST /admin/prices/import', () => {
  // A topic of its own (the shared broker's gateway.usage.v1 is other suites').
  useEnv({ KAFKA_USAGE_TOPIC: uniqueName('usage.price-import') });
  const api = useAdminApi();
  const { call } = api;
  const importPrices = (body: Record<string, unknown>, headers: Record<string, string> = {}) => call('POST', '/admin/prices/import', { body, headers });
  const book = async () => (await call('GET', '/admin/models')).body.data as Json[];

  const body = { format: 'litellm', content: LITELLM, effective_at: DEC, models: { 'deepseek-r1': 'deepseek-reasoner', 'claude-sonnet-4': 'claude-sonnet-4-5', 'deepseek-v3': null } };

  it('is a dry run unless asked: the diff per model and field, nothing written', async () => {
    const before = await book();
    const res = await importPrices(body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ format: 'litellm', effective_at: DEC, dry_run: true, entries_in_file: 11, price_versions: [] });
    expect(res.body.models.map((m: Json) => [m.model_id, m.status, m.new_price_version])).toEqual([
      ['claude-3-5-haiku', 'skipped', false],
      ['claude-sonnet-4', 'unchanged', false],
      ['deepseek-r1', 'changed', true],
      ['deepseek-v3', 'skipped', false],
      ['gpt-4o', 'unchanged', false],
      ['gpt-4o-mini', 'unchanged', false],
    ]);
    expect(res.body.models[2]).toEqual({
      model_id: 'deepseek-r1',
      source_key: 'deepseek-reasoner',
      status: 'changed',
      new_price_version: true,
      changes: [
        { field: 'input_per_mtok', current: '0.5714', proposed: '0.28' },
        { field: 'output_per_mtok', current: '2.2857', proposed: '0.42' },
        { field: 'cache_read_per_mtok', current: '0.2286', proposed: '0.028' },
      ],
      reason: null,
      notes: [],
    });
    expect(res.body.models[3]).toMatchObject({ source_key: null, reason: 'left out by the mapping' });
    expect(await book()).toEqual(before);
    expect((await call('GET', '/admin/audit-log')).body.data.map((e: Json) => e.action)).toEqual(['api_key.bootstrap']);
  });

  it('applies: the versions it answers are the book’s, audited with the key and request id, and new usage is priced with them', async () => {
    const res = await importPrices({ ...body, dry_run: false }, { 'x-request-id': 'req-import-1' });
    expect(res.status).toBe(200);
    expect(res.body.dry_run).toBe(false);
    const r1 = (await book()).find((m) => m.id === 'deepseek-r1');
    expect(res.body.price_versions).toEqual([r1.prices.at(-1)]);
    expect(r1.prices.at(-1)).toMatchObject({ effective_from: DEC, input_per_mtok: '0.28', output_per_mtok: '0.42', cache_read_per_mtok: '0.028', cache_write_per_mtok: null });

    const keyId = (await api.db.pool.query('SELECT id FROM api_keys WHERE prefix = $1', [prefixOfApiKey(api.adminKey)])).rows[0].id;
    const audit = (await call('GET', '/admin/audit-log?action=price_version.create')).body.data;
    expect(audit).toEqual([expect.objectContaining({ action: 'price_version.create', actor_key_id: keyId, request_id: 'req-import-1', before: null, after: r1.prices.at(-1) })]);

    // The price list and ingest share one in-memory book: both see the imported version.
    const prices = await client(api.base).get(`/v1/prices?at=${DEC}`, api.adminKey);
    expect(prices.body.prices.find((p: Json) => p.model === 'deepseek-r1')).toMatchObject({ input_per_mtok: '0.28', output_per_mtok: '0.42' });
    const event = aUsageEvent({ account_id: 'acct_import', occurred_at: '2026-12-01T10:00:00Z', usage: { input_tokens: 1_000_000, output_tokens: 500_000, cache_read_tokens: 0 } });
    await client(api.base).ingest([event]);
    const { rows } = await api.db.pool.query('SELECT cost_usd::text FROM usage_events WHERE event_id = $1', [event.event_id]);
    // 1M input x 0.28 + 0.5M output x 0.42, per million tokens.
    expect(rows).toEqual([{ cost_usd: '0.49' }]);

    // The same import again adds nothing: the book already has these prices.
    const again = await importPrices({ ...body, effective_at: '2027-01-01T00:00:00Z', dry_run: false });
    expect(again.body.price_versions).toEqual([]);
    expect(again.body.models.find((m: Json) => m.model_id === 'deepseek-r1').status).toBe('unchanged');
  });

  it.each([
    ['the file embedded as JSON instead of its text', { ...body, content: { 'gpt-4o': {} } }, 'content'],
    ['text that is not JSON', { ...body, content: '{"gpt-4o": ' }, 'content'],
    ['an OpenRouter list said to be LiteLLM', { ...body, content: '[]' }, 'content'],
    ['an unknown format', { ...body, format: 'helicone' }, 'format'],
    ['an instant without offset', { ...body, effective_at: '2026-12-01T00:00:00' }, 'effective_at'],
    ['an instant not after the latest version', { ...body, effective_at: '2025-01-01T00:00:00Z' }, 'effective_at'],
    ['a mapping to a key the file lacks', { ...body, models: { 'deepseek-r1': 'deepseek-r9' } }, 'models'],
    ['a new model id usage events could not name', { ...body, models: { 'openai/gpt-4o': 'gpt-4o' } }, 'models'],
    ['an unknown field', { ...body, replace: true }, 'body'],
  ])('%s is a 400 naming the field, and writes nothing', async (_name, bad, field) => {
    const res = await importPrices({ ...bad, dry_run: false });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.field).toBe(field);
    expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
    expect((await api.db.pool.query('SELECT count(*)::int AS n FROM price_versions')).rows[0].n).toBe(6);
  });

  it('takes a LiteLLM-sized file (about 4 MB, over the 64 KiB of other admin routes) from an admin only; over 8 MiB is a 413', async () => {
    const entry = JSON.stringify({ input_cost_per_token: 5.714e-7, output_cost_per_token: 2.2857e-6, cache_read_input_token_cost: 2.286e-7, litellm_provider: 'deepseek', max_input_tokens: 131072, mode: 'chat' });
    const big = (n: number) => `{${Array.from({ length: n }, (_, i) => `"padding-model-${i}": ${entry}`).join(',\n')}}`;
    const content = big(30_000);
    expect(content.length).toBeGreaterThan(3_500_000);
    const res = await importPrices({ ...body, models: { 'deepseek-r1': 'padding-model-7' }, content });
    expect(res.status).toBe(200);
    expect(res.body.entries_in_file).toBe(30_000);
    expect(res.body.models.find((m: Json) => m.model_id === 'deepseek-r1').status).toBe('unchanged');
    const tooBig = await fetch(`${api.base}/admin/prices/import`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${api.adminKey}` },
      body: JSON.stringify({ ...body, content: big(70_000) }),
    });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as Json).error.code).toBe('payload_too_large');
    // Only an admin's body is read: without a key, or with an auditor's, the 4 MB answer is the guard's.
    const auditorKey = await insertApiKey(api.db, 'auditor');
    for (const [key, status] of [[null, 401], [auditorKey, 403]] as const) {
      const res = await fetch(`${api.base}/admin/prices/import`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ ...body, content }),
      });
      expect(res.status).toBe(status);
    }
  });

  it('is documented in /openapi.json with its body and answer', async () => {
    const doc = (await (await fetch(`${api.base}/openapi.json`)).json()) as Json;
    const op = doc.paths['/admin/prices/import'].post;
    expect(Object.keys(op.requestBody.content['application/json'].schema.properties).sort()).toEqual(['content', 'dry_run', 'effective_at', 'format', 'models']);
    expect(Object.keys(op.responses).sort()).toEqual(expect.arrayContaining(['200', '400', '401', '403', '413']));
  });
});
