import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Database } from '@tokenmeter/db';
import { aUsageEvent } from '../factories/usage-events';
import { client, INGEST_TOKEN, insertApiKey, startApi } from '../helpers/api-app';
import { openTestDatabase, resetDatabase, seedPriceBook, storedEventCount } from '../helpers/tokenmeter-db';

jest.setTimeout(60_000);

/**
 * The inputs that once reached a 500 or were misread, each pinned: bad input is a 400 with the
 * error shape naming the field, never a 5xx, and nothing is half-applied. The fuzz run
 * (api-fuzz.test.ts) looks for new ones; these keep the found ones found.
 */
describe('bad input: a 400 naming the field, never a 5xx', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let admin: string;
  let account: string;

  beforeAll(async () => {
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    ({ app, base } = await startApi());
    admin = await insertApiKey(db, 'admin');
    await client(base).ingest([aUsageEvent({ event_id: 'evt_bad_input_1', account_id: 'acct_bad' })]);
    account = await insertApiKey(db, 'account', 'acct_bad');
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  async function send(method: string, path: string, key: string, body?: unknown) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string; details: { field?: string } } } };
  }

  it.each([
    // A date that is not a date reached .getTime() in a cross-field rule (500).
    ['POST', '/admin/accounts/acct_bad/price-overrides', { kind: 'discount', discount_percent: '10', effective_from: '2026-01-01T00:00:00Z', effective_to: 'AAA' }, 'effective_to'],
    ['POST', '/admin/reprice', { from: '2026-11-01T00:00:00Z', to: '' }, 'to'],
    ['POST', '/admin/reprice', { from: 'x', to: '2026-11-01T00:00:00Z' }, 'from'],
    // NUL cannot be stored in a Postgres text column (500).
    ['POST', '/admin/accounts', { id: 'acct_nul', name: 'a\u0000b' }, 'name'],
    ['POST', '/admin/api-keys', { role: 'admin', name: 'k\u0000' }, 'name'],
    ['POST', '/admin/models', { id: 'm-nul', display_name: '\u0000' }, 'display_name'],
    ['POST', '/admin/invoices/close', { period: '2026-13' }, 'period'],
    ['POST', '/admin/invoices/close', { period: '2026-11', force: 'yes' }, 'force'],
  ])('%s %s %j -> 400 on %s', async (method, path, body, field) => {
    const res = await send(method, path, admin, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: { field } });
  });

  it.each([
    // Was read as 2 March: the event contract's RFC 3339 parser is now the only one.
    ['/v1/usage/events?from=2025-02-30T00:00:00Z&to=2025-03-02T00:00:00Z', 'from'],
    ['/v1/usage/events?from=2025-02-01%2000:00:00Z&to=2025-03-02T00:00:00Z', 'from'],
    ['/v1/usage/summary?from=2026-11-01T00:30:00Z&to=2026-11-02T00:00:00Z', 'from'],
    ['/v1/usage/summary?from=2026-11-01T00:00:00Z&from=2026-11-01T01:00:00Z&to=2026-11-02T00:00:00Z', 'from'],
    ['/v1/usage/summary?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z', 'to'],
    ['/v1/usage/events?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&limit=0', 'limit'],
    ['/v1/usage/events?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&cursor=bm90LWEtY3Vyc29y', 'cursor'],
    ['/v1/usage/events?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&model=a%00b', 'model'],
  ])('GET %s -> 400 on %s', async (path, field) => {
    const res = await send('GET', path, account);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: { field } });
  });

  it('a range that is fine still answers (the checks above are not refusing everything)', async () => {
    const res = await send('GET', '/v1/usage/summary?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z', account);
    expect(res.status).toBe(200);
    const offset = await send('GET', '/v1/usage/summary?from=2026-11-01T05:00:00%2B05:00&to=2026-12-01T00:00:00Z', account);
    expect(offset.status).toBe(200);
  });

  it('an event with NUL in its model or metadata is rejected on its own over HTTP, not a 500', async () => {
    const before = await storedEventCount(db);
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
      body: JSON.stringify({
        events: [
          aUsageEvent({ event_id: 'evt_nul_model', account_id: 'acct_bad', model: 'deep\u0000seek' }),
          aUsageEvent({ event_id: 'evt_nul_meta', account_id: 'acct_bad', metadata: { note: 'a\u0000b' } }),
          aUsageEvent({ event_id: 'evt_fine_after_nul', account_id: 'acct_bad' }),
        ],
      }),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { event_id: string; status: string }[] };
    expect(results.map((r) => [r.event_id, r.status])).toEqual([
      ['evt_nul_model', 'rejected'],
      ['evt_nul_meta', 'rejected'],
      ['evt_fine_after_nul', 'accepted'],
    ]);
    expect(await storedEventCount(db)).toBe(before + 1);
  });
});
