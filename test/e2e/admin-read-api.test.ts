import type { NestExpressApplication } from '@nestjs/platform-express';
import { aUsageEvent } from '../factories/usage-events';
import { client, insertApiKey, qs, startApi } from '../helpers/api-app';
import { useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const FROM = '2026-11-01T00:00:00.000Z';
const TO = '2026-12-01T00:00:00.000Z';

/** RFC 4180 parser for the test: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

describe('admin read API: events, export, rejections, conflicts, unpriced usage, account totals', () => {
  let app: NestExpressApplication;
  let base: string;
  let api: ReturnType<typeof client>;
  const db = useTestDatabase();
  let admin: string;
  let accountKey: string;

  beforeAll(async () => {
    ({ app, base } = await startApi());
    api = client(base);
  });
  afterAll(async () => {
    await app.close();
  });
  beforeEach(async () => {
    admin = await insertApiKey(db, 'admin');
    accountKey = await insertApiKey(db, 'account', 'acct_x');
  });

  it('lists events across accounts with every filter, newest first, paginated without gaps', async () => {
    const events = Array.from({ length: 23 }, (_, i) =>
      aUsageEvent({
        event_id: `evt_adm_${String(i).padStart(2, '0')}`,
        account_id: `acct_${i % 3}`,
        api_key_id: i % 2 === 0 ? 'key_even' : null,
        model: i % 4 === 0 ? 'gpt-4o' : 'deepseek-r1',
        request_id: `req_adm_${i}`,
        occurred_at: new Date(Date.parse('2026-11-05T00:00:00Z') + i * 3_600_000).toISOString(),
        // Over deepseek-r1's 65536 max output: stored, priced and flagged.
        usage: i === 5 ? { input_tokens: 10, output_tokens: 70_000 } : { input_tokens: 1000, output_tokens: 500 },
      }),
    );
    await api.ingest(events);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.get(`/admin/events${qs({ limit: 5, cursor })}`, admin);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((r: { event_id: string }) => r.event_id));
      cursor = page.body.next_cursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(events.map((e) => e.event_id).reverse());

    const ids = async (query: Record<string, string | number>) =>
      (await api.get(`/admin/events${qs({ ...query, limit: 1000 })}`, admin)).body.data.map((r: { event_id: string }) => r.event_id).sort();
    const expected = (pred: (i: number) => boolean) => events.filter((_, i) => pred(i)).map((e) => e.event_id).sort();
    expect(await ids({ account_id: 'acct_1' })).toEqual(expected((i) => i % 3 === 1));
    expect(await ids({ model: 'gpt-4o' })).toEqual(expected((i) => i % 4 === 0));
    expect(await ids({ api_key_id: 'key_even', account_id: 'acct_0' })).toEqual(expected((i) => i % 2 === 0 && i % 3 === 0));
    expect(await ids({ from: '2026-11-05T03:00:00Z', to: '2026-11-05T06:00:00Z' })).toEqual(expected((i) => i >= 3 && i < 6));
    expect(await ids({ event_id: 'evt_adm_07' })).toEqual(['evt_adm_07']);
    expect(await ids({ request_id: 'req_adm_11' })).toEqual(['evt_adm_11']);
    expect(await ids({ flagged: 'true' })).toEqual(['evt_adm_05']);
    const flagged = await api.get(`/admin/events${qs({ event_id: 'evt_adm_05' })}`, admin);
    expect(flagged.body.data[0]).toMatchObject({ flags: ['exceeds_max_output'], costs: { cost_usd: expect.any(String) } });
  });

  it('exports matching events as CSV and NDJSON, streamed, with exact values and escaping', async () => {
    const n = 2_500; // several cursor batches of 1000
    const events = Array.from({ length: n }, (_, i) =>
      aUsageEvent({ event_id: `evt_exp_${String(i).padStart(5, '0')}`, account_id: i % 2 ? 'acct_odd' : 'acct_even', occurred_at: new Date(Date.parse('2026-11-02T00:00:00Z') + i * 1000).toISOString() }),
    );
    const tricky = aUsageEvent({ event_id: 'evt_exp_tricky', account_id: 'acct_even', request_id: 'req "quoted", with comma\nand newline', occurred_at: '2026-11-20T00:00:00.000Z' });
    for (let i = 0; i < events.length; i += 1000) await api.ingest(events.slice(i, i + 1000));
    await api.ingest([tricky]);

    const res = await fetch(`${base}/admin/events/export${qs({ format: 'csv', account_id: 'acct_even' })}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="tokenmeter-events-\d{8}T\d{6}Z\.csv"$/);
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const rows = parseCsv(await res.text());
    const header = rows[0];
    expect(header.slice(0, 6)).toEqual(['event_id', 'account_id', 'api_key_id', 'model', 'request_id', 'occurred_at']);
    expect(rows).toHaveLength(1 + n / 2 + 1);
    const col = (name: string) => header.indexOf(name);
    // Oldest first, the tricky request id round-trips byte for byte.
    expect(rows[1][col('event_id')]).toBe('evt_exp_00000');
    const last = rows[rows.length - 1];
    expect(last[col('event_id')]).toBe('evt_exp_tricky');
    expect(last[col('request_id')]).toBe(tricky.request_id);
    expect(last[col('cost_usd')]).toBe('0.00175997');
    const { rows: sums } = await db.pool.query("SELECT trim_scale(sum(cost_usd))::text AS total FROM usage_events WHERE account_id = 'acct_even'");
    const { Decimal } = await import('@tokenmeter/billing');
    const total = rows.slice(1).reduce((acc, r) => acc.plus(r[col('cost_usd')]), new Decimal(0));
    expect(total.toString()).toBe(sums[0].total);

    const nd = await fetch(`${base}/admin/events/export${qs({ format: 'ndjson', from: '2026-11-02T00:10:00Z', to: '2026-11-02T00:20:00Z' })}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(nd.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const lines = (await nd.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(600);
    expect(lines[0]).toMatchObject({ event_id: 'evt_exp_00600', occurred_at: '2026-11-02T00:10:00.000Z', input_tokens: '1000', flags: [] });
  });

  it('an export abandoned by the client frees its database connection', async () => {
    const events = Array.from({ length: 3000 }, (_, i) => aUsageEvent({ event_id: `evt_ab_${i}`, occurred_at: new Date(Date.parse('2026-11-02T00:00:00Z') + i).toISOString() }));
    for (let i = 0; i < events.length; i += 1000) await api.ingest(events.slice(i, i + 1000));
    const controller = new AbortController();
    const res = await fetch(`${base}/admin/events/export?format=ndjson`, { headers: { authorization: `Bearer ${admin}` }, signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const exportQueries = async () =>
      Number(
        (await db.pool.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ORDER BY e.occurred_at, e.event_id%' AND pid <> pg_backend_pid() AND state <> 'idle'")).rows[0].count,
      );
    for (let i = 0; i < 50 && (await exportQueries()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await exportQueries()).toBe(0);
    expect((await api.get('/admin/events?limit=1', admin)).status).toBe(200);
  });

  it('lists rejected events and event conflicts, newest first, paginated', async () => {
    const ok = aUsageEvent({ event_id: 'evt_conflicted' });
    await api.ingest([ok]);
    await api.ingest([{ ...ok, usage: { input_tokens: 1, output_tokens: 1 } }]);
    await api.ingest([{ ...aUsageEvent({ event_id: 'evt_bad_1' }), occurred_at: 'yesterday' }]);
    await api.ingest([{ ...aUsageEvent({ event_id: 'evt_bad_2' }), model: '' }]);

    const first = await api.get('/admin/rejected-events?limit=1', admin);
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(1);
    expect(first.body.data[0]).toMatchObject({ event_id: 'evt_bad_2', source: 'http', reason_code: expect.any(String) });
    const second = await api.get(`/admin/rejected-events${qs({ limit: 1, cursor: first.body.next_cursor })}`, admin);
    expect(second.body.data[0]).toMatchObject({ event_id: 'evt_bad_1', reason_code: 'schema' });
    expect(JSON.parse(second.body.data[0].raw_payload)).toMatchObject({ event_id: 'evt_bad_1', occurred_at: 'yesterday' });
    expect(second.body.next_cursor).toBeNull();
    expect((await api.get('/admin/rejected-events?reason_code=schema', admin)).body.data.map((r: { event_id: string }) => r.event_id)).toContain('evt_bad_1');

    const conflicts = await api.get('/admin/event-conflicts', admin);
    expect(conflicts.body.data).toHaveLength(1);
    expect(conflicts.body.data[0]).toMatchObject({ event_id: 'evt_conflicted', source: 'http' });
    expect(conflicts.body.data[0].existing_hash).not.toBe(conflicts.body.data[0].payload_hash);
    expect(JSON.parse(conflicts.body.data[0].raw_payload).usage).toEqual({ input_tokens: 1, output_tokens: 1 });
  });

  it('groups unpriced usage by model and account, with exact token sums and first/last times', async () => {
    await api.ingest([
      aUsageEvent({ account_id: 'acct_u1', model: 'new-model', occurred_at: '2026-11-03T10:00:00.000Z', usage: { input_tokens: 10, output_tokens: 5 } }),
      aUsageEvent({ account_id: 'acct_u1', model: 'new-model', occurred_at: '2026-11-04T11:30:00.000Z', usage: { input_tokens: 20, output_tokens: 7 } }),
      aUsageEvent({ account_id: 'acct_u2', model: 'new-model', occurred_at: '2026-11-03T10:15:00.000Z', usage: { input_tokens: 1, output_tokens: 1 } }),
      aUsageEvent({ account_id: 'acct_u2', model: 'other-model', occurred_at: '2026-11-03T10:20:00.000Z', usage: { input_tokens: 3, output_tokens: 4 } }),
      // Priced events in the same hour and account must not be counted.
      aUsageEvent({ account_id: 'acct_u1', model: 'deepseek-r1', occurred_at: '2026-11-03T10:05:00.000Z' }),
    ]);
    const res = await api.get('/admin/unpriced-usage', admin);
    expect(res.status).toBe(200);
    const zero = { cache_read_tokens: 0, cache_write_tokens: 0 };
    expect(res.body.data).toEqual([
      { model: 'new-model', account_id: 'acct_u1', events: 2, input_tokens: 30, output_tokens: 12, ...zero, first_occurred_at: '2026-11-03T10:00:00.000Z', last_occurred_at: '2026-11-04T11:30:00.000Z' },
      { model: 'new-model', account_id: 'acct_u2', events: 1, input_tokens: 1, output_tokens: 1, ...zero, first_occurred_at: '2026-11-03T10:15:00.000Z', last_occurred_at: '2026-11-03T10:15:00.000Z' },
      { model: 'other-model', account_id: 'acct_u2', events: 1, input_tokens: 3, output_tokens: 4, ...zero, first_occurred_at: '2026-11-03T10:20:00.000Z', last_occurred_at: '2026-11-03T10:20:00.000Z' },
    ]);
    const filtered = await api.get(`/admin/unpriced-usage${qs({ account_id: 'acct_u1', from: '2026-11-04T00:00:00Z' })}`, admin);
    expect(filtered.body.data).toEqual([expect.objectContaining({ account_id: 'acct_u1', events: 1, input_tokens: 20 })]);
  });

  it('totals usage per account from rollups, largest cost first, paginated', async () => {
    const spend: [string, number][] = [['acct_small', 1], ['acct_big', 5], ['acct_mid', 3], ['acct_mid2', 3]];
    await api.ingest(spend.flatMap(([account, n]) => Array.from({ length: n }, () => aUsageEvent({ account_id: account }))));
    const order: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.get(`/admin/usage/accounts${qs({ from: FROM, to: TO, limit: 1, cursor })}`, admin);
      expect(page.status).toBe(200);
      order.push(...page.body.data.map((a: { account_id: string }) => a.account_id));
      if (page.body.data[0]?.account_id === 'acct_big') {
        expect(page.body.data[0]).toMatchObject({ requests: 5, input_tokens: 5000, cost_usd: '0.00879985' });
      }
      cursor = page.body.next_cursor ?? undefined;
    } while (cursor);
    expect(order).toEqual(['acct_big', 'acct_mid', 'acct_mid2', 'acct_small']);
    const bad = await api.get(`/admin/usage/accounts${qs({ from: FROM })}`, admin);
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('to');
  });

  describe('authorisation', () => {
    const routes = [
      '/admin/events',
      '/admin/events/export',
      '/admin/rejected-events',
      '/admin/event-conflicts',
      '/admin/unpriced-usage',
      `/admin/usage/accounts${qs({ from: FROM, to: TO })}`,
    ];
    it.each(routes)('%s: no key 401, account key 403, admin 200', async (path) => {
      const none = await api.get(path, null);
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe('unauthorized');
      const forbidden = await api.get(path, accountKey);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error.code).toBe('forbidden');
      expect((await api.get(path, admin)).status).toBe(200);
    });
  });
});
