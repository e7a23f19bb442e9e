import type { NestExpressApplication } from '@nestjs/platform-express';
import { Decimal } from '@tokenmeter/billing';
import { aUsageEvent, deepseekUsage, openAiUsage, type GatewayEvent } from '../factories/usage-events';
import { client, insertApiKey, qs, startApi } from '../helpers/api-app';
import { createTopics, testKafka, uniqueName } from '../helpers/kafka';
import { useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(60_000);

const A = 'acct_read_a';
const B = 'acct_read_b';
const FROM = '2026-11-10T00:00:00.000Z';
const TO = '2026-11-12T00:00:00.000Z';
const MODELS = ['deepseek-r1', 'gpt-4o', 'claude-sonnet-4'] as const;
const KEYS = ['key_1', 'key_2', null] as const;

function usageFor(model: string, i: number): Record<string, unknown> {
  if (model === 'deepseek-r1') return deepseekUsage(1000 + i, 200, 300 + i);
  if (model === 'gpt-4o') return openAiUsage(2000 + 3 * i, 500, 100 + i, 20);
  return { input_tokens: 700 + i, output_tokens: 90 + i, cache_read_input_tokens: 1500, cache_creation_input_tokens: 40 * i };
}

/** 30 events of A over two days (3 models, 2 keys + none), 6 of B, 1 of A just outside the range, 1 unpriced. */
function dataset(): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  for (let i = 0; i < 30; i++) {
    const model = MODELS[i % 3];
    events.push(
      aUsageEvent({
        event_id: `evt_a_${String(i).padStart(3, '0')}`,
        account_id: A,
        api_key_id: KEYS[Math.floor(i / 2) % 3],
        model,
        occurred_at: new Date(Date.parse(FROM) + i * 97 * 60_000 + i * 7_000).toISOString(),
        usage: usageFor(model, i),
      }),
    );
  }
  for (let i = 0; i < 6; i++) {
    events.push(aUsageEvent({ event_id: `evt_b_${i}`, account_id: B, occurred_at: new Date(Date.parse(FROM) + i * 3_600_000).toISOString() }));
  }
  // Exactly at `to`: outside [from, to).
  events.push(aUsageEvent({ event_id: 'evt_a_at_to', account_id: A, occurred_at: TO }));
  events.push(
    aUsageEvent({ event_id: 'evt_a_unpriced', account_id: A, api_key_id: 'key_1', model: 'mystery-model', occurred_at: '2026-11-10T05:15:00.000Z' }),
  );
  return events;
}

describe('account usage API: summary, timeseries, receipts, prices', () => {
  let app: NestExpressApplication;
  let api: ReturnType<typeof client>;
  const db = useTestDatabase();
  let keyA: string;
  let keyB: string;
  let admin: string;

  beforeAll(async () => {
    // An empty usage topic of its own, so complete_up_to does not depend on what else is on the shared broker.
    const topic = uniqueName('usage.read-api');
    await createTopics(testKafka(), [topic], 2);
    const started = await startApi('warn', { KAFKA_USAGE_TOPIC: topic });
    app = started.app;
    api = client(started.base);
  });
  afterAll(async () => {
    await app.close();
  });
  beforeEach(async () => {
    keyA = await insertApiKey(db, 'account', A);
    keyB = await insertApiKey(db, 'account', B);
    admin = await insertApiKey(db, 'admin');
  });

  /** The same sums straight from raw events: what the rollup-backed answers must equal exactly. */
  async function rawByModel(accountId: string, from: string, to: string) {
    const { rows } = await db.pool.query(
      `SELECT model, count(*)::int AS requests, count(*) FILTER (WHERE price_version_id IS NULL)::int AS unpriced_requests,
              sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens,
              sum(cache_read_tokens)::int AS cache_read_tokens, sum(cache_write_tokens)::int AS cache_write_tokens,
              trim_scale(coalesce(sum(input_cost_usd), 0))::text AS input_cost_usd, trim_scale(coalesce(sum(output_cost_usd), 0))::text AS output_cost_usd,
              trim_scale(coalesce(sum(cache_read_cost_usd), 0))::text AS cache_read_cost_usd,
              trim_scale(coalesce(sum(cache_write_cost_usd), 0))::text AS cache_write_cost_usd,
              trim_scale(coalesce(sum(cost_usd), 0))::text AS cost_usd
       FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3
       GROUP BY model ORDER BY sum(cost_usd) DESC NULLS LAST, model`,
      [accountId, from, to],
    );
    return rows;
  }

  it('summarises an account from rollups: totals and per-model costs equal the raw events, exactly', async () => {
    const ingested = await api.ingest(dataset());
    expect(ingested.summary.accepted).toBe(38);

    const asked = Date.now();
    const res = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO })}`, keyA);
    const answered = Date.now();
    expect(res.status).toBe(200);
    const raw = await rawByModel(A, FROM, TO);
    expect(res.body.by_model).toEqual(raw);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS requests, trim_scale(sum(cost_usd))::text AS cost_usd, sum(input_tokens)::int AS input_tokens,
              sum(output_tokens)::int AS output_tokens, sum(cache_read_tokens)::int AS cache_read_tokens, sum(cache_write_tokens)::int AS cache_write_tokens
       FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
      [A, FROM, TO],
    );
    expect(res.body).toMatchObject({ account_id: A, from: FROM, to: TO, totals: { ...rows[0], unpriced_requests: 1 } });
    // The totals' per-type costs are the raw per-type sums, and add up to cost_usd exactly.
    const perType = ['input_cost_usd', 'output_cost_usd', 'cache_read_cost_usd', 'cache_write_cost_usd'] as const;
    const { rows: rawTypes } = await db.pool.query(
      `SELECT trim_scale(sum(input_cost_usd))::text AS input_cost_usd, trim_scale(sum(output_cost_usd))::text AS output_cost_usd,
              trim_scale(sum(cache_read_cost_usd))::text AS cache_read_cost_usd, trim_scale(sum(cache_write_cost_usd))::text AS cache_write_cost_usd
       FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3`,
      [A, FROM, TO],
    );
    expect(res.body.totals).toMatchObject(rawTypes[0]);
    expect(perType.reduce((sum, k) => sum.plus(res.body.totals[k]), new Decimal(0)).equals(res.body.totals.cost_usd)).toBe(true);
    expect(res.body.totals.requests).toBe(31); // 30 priced + 1 unpriced; the event at `to` is excluded
    expect(res.body.by_model.find((m: { model: string }) => m.model === 'mystery-model')).toMatchObject({ requests: 1, unpriced_requests: 1, cost_usd: '0' });
    // Every partition of this API's usage topic is empty, so caught up: complete_up_to is the moment
    // the broker's offsets were read for this request (HTTP ingest is in the rollups already).
    expect(res.body.complete_up_to).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(res.body.complete_up_to)).toBeGreaterThanOrEqual(asked);
    expect(Date.parse(res.body.complete_up_to)).toBeLessThanOrEqual(answered);

    // An admin names the account and gets the same answer; an empty range is zeros, not an error.
    const asAdmin = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO, account_id: A })}`, admin);
    expect({ ...asAdmin.body, complete_up_to: null }).toEqual({ ...res.body, complete_up_to: null });
    const empty = await api.get(`/v1/usage/summary${qs({ from: '2020-01-01T00:00:00Z', to: '2020-01-02T00:00:00Z' })}`, keyA);
    expect(empty.body.totals).toEqual({
      requests: 0, unpriced_requests: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, cost_usd: '0',
      input_cost_usd: '0', output_cost_usd: '0', cache_read_cost_usd: '0', cache_write_cost_usd: '0',
    });
    expect(empty.body.by_model).toEqual([]);
  });

  it('buckets by hour or UTC day, optionally per model or API key, equal to the raw events', async () => {
    await api.ingest(dataset());
    const day = await api.get(`/v1/usage/timeseries${qs({ from: FROM, to: TO, granularity: 'day' })}`, keyA);
    expect(day.status).toBe(200);
    const { rows: rawDays } = await db.pool.query(
      `SELECT to_char(date_trunc('day', occurred_at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS start, NULL AS "group",
              count(*)::int AS requests, count(*) FILTER (WHERE price_version_id IS NULL)::int AS unpriced_requests,
              sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens,
              sum(cache_read_tokens)::int AS cache_read_tokens, sum(cache_write_tokens)::int AS cache_write_tokens,
              trim_scale(coalesce(sum(input_cost_usd), 0))::text AS input_cost_usd, trim_scale(coalesce(sum(output_cost_usd), 0))::text AS output_cost_usd,
              trim_scale(coalesce(sum(cache_read_cost_usd), 0))::text AS cache_read_cost_usd,
              trim_scale(coalesce(sum(cache_write_cost_usd), 0))::text AS cache_write_cost_usd,
              trim_scale(coalesce(sum(cost_usd), 0))::text AS cost_usd
       FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1 ORDER BY 1`,
      [A, FROM, TO],
    );
    expect(day.body.buckets).toEqual(rawDays);
    expect(day.body.buckets.map((b: { start: string }) => b.start)).toEqual(['2026-11-10T00:00:00.000Z', '2026-11-11T00:00:00.000Z']);

    const byKey = await api.get(`/v1/usage/timeseries${qs({ from: FROM, to: TO, granularity: 'day', group_by: 'api_key' })}`, keyA);
    const groups = byKey.body.buckets.map((b: { start: string; group: string | null }) => `${b.start.slice(0, 10)}/${b.group}`);
    expect(groups).toEqual(['2026-11-10/null', '2026-11-10/key_1', '2026-11-10/key_2', '2026-11-11/null', '2026-11-11/key_1', '2026-11-11/key_2']);
    const sum = (buckets: { requests: number }[]) => buckets.reduce((n, b) => n + b.requests, 0);
    expect(sum(byKey.body.buckets)).toBe(31);

    const hourly = await api.get(`/v1/usage/timeseries${qs({ from: FROM, to: '2026-11-10T03:00:00Z', group_by: 'model' })}`, keyA);
    // evt_a_000 00:00 deepseek-r1, evt_a_001 01:37 gpt-4o; evt_a_002 is at 03:14, outside.
    expect(hourly.body.buckets.map((b: { start: string; group: string; requests: number }) => [b.start, b.group, b.requests])).toEqual([
      ['2026-11-10T00:00:00.000Z', 'deepseek-r1', 1],
      ['2026-11-10T01:00:00.000Z', 'gpt-4o', 1],
    ]);
  });

  it('narrows the summary and the buckets to one model and/or API key, equal to the raw events', async () => {
    await api.ingest(dataset());
    const rawCell = async (model: string | null, key: string | null) => {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS requests, sum(input_tokens)::int AS input_tokens, trim_scale(coalesce(sum(cost_usd), 0))::text AS cost_usd,
                trim_scale(coalesce(sum(output_cost_usd), 0))::text AS output_cost_usd
         FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3
           AND ($4::text IS NULL OR model = $4) AND ($5::text IS NULL OR api_key_id = $5)`,
        [A, FROM, TO, model, key],
      );
      return rows[0];
    };
    for (const [model, key] of [['gpt-4o', null], [null, 'key_2'], ['claude-sonnet-4', 'key_2']] as const) {
      const filter = { ...(model ? { model } : {}), ...(key ? { api_key_id: key } : {}) };
      const summary = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO, ...filter })}`, keyA);
      expect(summary.status).toBe(200);
      const raw = await rawCell(model, key);
      expect(raw.requests).toBeGreaterThan(0);
      expect(summary.body.totals).toMatchObject(raw);
      if (model) expect(summary.body.by_model.map((m: { model: string }) => m.model)).toEqual([model]);
      if (key) expect(summary.body.by_api_key.map((k: { api_key_id: string }) => k.api_key_id)).toEqual([key]);
      const series = await api.get(`/v1/usage/timeseries${qs({ from: FROM, to: TO, granularity: 'day', ...filter })}`, keyA);
      expect(series.status).toBe(200);
      const total = series.body.buckets.reduce((sum: Decimal, b: { cost_usd: string }) => sum.plus(b.cost_usd), new Decimal(0));
      expect(total.equals(raw.cost_usd)).toBe(true);
      expect(series.body.buckets.reduce((n: number, b: { requests: number }) => n + b.requests, 0)).toBe(raw.requests);
    }
    // A model the account never used: zeros, not an error.
    const none = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO, model: 'no-such-model' })}`, keyA);
    expect(none.body.totals).toMatchObject({ requests: 0, cost_usd: '0' });
  });

  it('pages through receipts newest first without gaps or duplicates, with filters', async () => {
    // Ties on occurred_at are broken by event_id: pagination must not lose any of them.
    const same = '2026-11-10T12:00:00.000Z';
    const tied = Array.from({ length: 9 }, (_, i) => aUsageEvent({ event_id: `evt_tie_${i}`, account_id: A, occurred_at: same }));
    await api.ingest([...dataset(), ...tied]);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await api.get(`/v1/usage/events${qs({ from: FROM, to: TO, limit: 7, cursor })}`, keyA);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(7);
      seen.push(...page.body.data.map((r: { event_id: string }) => r.event_id));
      cursor = page.body.next_cursor ?? undefined;
      pages++;
    } while (cursor && pages < 20);
    const { rows } = await db.pool.query(
      'SELECT event_id FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY occurred_at DESC, event_id DESC',
      [A, FROM, TO],
    );
    expect(seen).toEqual(rows.map((r) => r.event_id));
    expect(new Set(seen).size).toBe(40);
    expect(pages).toBe(6);

    const filtered = await api.get(`/v1/usage/events${qs({ from: FROM, to: TO, model: 'gpt-4o', api_key_id: 'key_1', limit: 1000 })}`, keyA);
    const ids = filtered.body.data.map((r: { event_id: string; model: string; api_key_id: string }) => `${r.model}/${r.api_key_id}`);
    expect(ids).toHaveLength(5);
    expect(new Set(ids)).toEqual(new Set(['gpt-4o/key_1']));
    expect(filtered.body.next_cursor).toBeNull();

    // request_id: the account route filters on it as the admin route does.
    const one = await db.pool.query("SELECT request_id FROM usage_events WHERE event_id = 'evt_a_007'");
    const byRequest = await api.get(`/v1/usage/events${qs({ from: FROM, to: TO, request_id: one.rows[0].request_id })}`, keyA);
    expect(byRequest.status).toBe(200);
    expect(byRequest.body.data.map((r: { event_id: string }) => r.event_id)).toEqual(
      (await db.pool.query('SELECT event_id FROM usage_events WHERE account_id = $1 AND request_id = $2 ORDER BY occurred_at DESC, event_id DESC', [A, one.rows[0].request_id])).rows.map((r) => r.event_id),
    );
  });

  it('shows a receipt: tokens as received and normalised, price version and rates, cost per type, invoice', async () => {
    const usage = { input_tokens: 1000, output_tokens: 500, cache_read_input_tokens: 2000, cache_creation_input_tokens: 400 };
    const event = aUsageEvent({ event_id: 'evt_receipt', account_id: A, model: 'claude-sonnet-4', usage, metadata: { route: '/chat' } });
    await api.ingest([event]);
    const res = await api.get('/v1/usage/events/evt_receipt', keyA);
    expect(res.status).toBe(200);
    const { rows } = await db.pool.query("SELECT id::text, received_at, priced_at FROM price_versions, usage_events WHERE model_id = 'claude-sonnet-4' AND event_id = 'evt_receipt'");
    expect(res.body).toEqual({
      event_id: 'evt_receipt',
      account_id: A,
      api_key_id: 'key_test',
      model: 'claude-sonnet-4',
      request_id: event.request_id,
      occurred_at: '2026-11-15T10:30:00.000Z',
      received_at: rows[0].received_at.toISOString(),
      source: 'http',
      tokens: { input_tokens: 1000, output_tokens: 500, cache_read_tokens: 2000, cache_write_tokens: 400, reasoning_tokens: 0 },
      usage_format: 'anthropic',
      usage_raw: usage,
      metadata: { route: '/chat' },
      price_version: {
        id: rows[0].id,
        model: 'claude-sonnet-4',
        effective_from: '2025-01-01T00:00:00.000Z',
        input_per_mtok: '3',
        output_per_mtok: '15',
        cache_read_per_mtok: '0.3',
        cache_write_per_mtok: '3.75',
      },
      price_override: null,
      // 1000 x $3 + 500 x $15 + 2000 x $0.30 + 400 x $3.75, per million tokens.
      costs: { input_cost_usd: '0.003', output_cost_usd: '0.0075', cache_read_cost_usd: '0.0006', cache_write_cost_usd: '0.0015', cost_usd: '0.0126' },
      priced_at: rows[0].priced_at.toISOString(),
      flags: [],
      invoice_id: null,
    });

    await db.pool.query("UPDATE usage_events SET invoice_id = 'inv_2026_11_a' WHERE event_id = 'evt_receipt'");
    expect((await api.get('/v1/usage/events/evt_receipt', keyA)).body.invoice_id).toBe('inv_2026_11_a');
    expect((await api.get(`/v1/usage/events/evt_receipt${qs({ account_id: A })}`, admin)).body.event_id).toBe('evt_receipt');
  });

  it('lists the prices in force now and at any past instant', async () => {
    await db.pool.query(
      "INSERT INTO price_versions (model_id, effective_from, input_per_mtok, output_per_mtok, cache_read_per_mtok) VALUES ('gpt-4o', '2026-06-01T00:00:00Z', 2.00, 8.00, 1.00)",
    );
    const now = await api.get('/v1/prices', keyA);
    expect(now.status).toBe(200);
    expect(now.body.prices.map((p: { model: string }) => p.model)).toEqual([
      'claude-3-5-haiku', 'claude-sonnet-4', 'deepseek-r1', 'deepseek-v3', 'gpt-4o', 'gpt-4o-mini',
    ]);
    const gpt = (body: { prices: { model: string }[] }) => body.prices.find((p) => p.model === 'gpt-4o');
    expect(gpt(now.body)).toMatchObject({
      effective_from: '2026-06-01T00:00:00.000Z', input_per_mtok: '2', output_per_mtok: '8', cache_read_per_mtok: '1', cache_write_per_mtok: null,
    });
    const before = await api.get(`/v1/prices${qs({ at: '2026-05-31T23:59:59.999Z' })}`, admin);
    expect(before.body.at).toBe('2026-05-31T23:59:59.999Z');
    expect(gpt(before.body)).toMatchObject({ effective_from: '2025-01-01T00:00:00.000Z', input_per_mtok: '2.5', output_per_mtok: '10' });
    // At exactly effective_from the new version applies.
    expect(gpt((await api.get(`/v1/prices${qs({ at: '2026-06-01T00:00:00Z' })}`, keyA)).body)).toMatchObject({ input_per_mtok: '2' });
    expect((await api.get(`/v1/prices${qs({ at: '2024-12-31T00:00:00Z' })}`, keyA)).body.prices).toEqual([]);
  });

  it('answers 400 naming the field for bad parameters', async () => {
    const cases: [string, string][] = [
      [`/v1/usage/summary${qs({ to: TO })}`, 'from'],
      [`/v1/usage/summary${qs({ from: FROM })}`, 'to'],
      [`/v1/usage/summary${qs({ from: '2026-11-10', to: TO })}`, 'from'],
      [`/v1/usage/summary${qs({ from: 'yesterday', to: TO })}`, 'from'],
      [`/v1/usage/summary${qs({ from: '2026-11-10T00:30:00Z', to: TO })}`, 'from'],
      [`/v1/usage/summary${qs({ from: FROM, to: FROM })}`, 'to'],
      [`/v1/usage/summary${qs({ from: '2025-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' })}`, 'to'],
      [`/v1/usage/timeseries${qs({ from: FROM, to: TO, granularity: 'week' })}`, 'granularity'],
      [`/v1/usage/timeseries${qs({ from: FROM, to: TO, group_by: 'account' })}`, 'group_by'],
      [`/v1/usage/events${qs({ from: FROM, to: TO, limit: 0 })}`, 'limit'],
      [`/v1/usage/events${qs({ from: FROM, to: TO, limit: 1001 })}`, 'limit'],
      [`/v1/usage/events${qs({ from: FROM, to: TO, cursor: 'bm90IGEgY3Vyc29y' })}`, 'cursor'],
      [`/v1/usage/events${qs({ from: FROM, to: TO, cursor: '%%%' })}`, 'cursor'],
      [`/v1/prices${qs({ at: 'now' })}`, 'at'],
      [`/v1/usage/summary?from=${FROM}&from=${FROM}&to=${TO}`, 'from'],
    ];
    for (const [path, field] of cases) {
      const res = await api.get(path, keyA);
      expect({ path, status: res.status, code: res.body.error?.code, field: res.body.error?.details?.field }).toEqual({
        path, status: 400, code: 'validation_failed', field,
      });
      expect(res.body.error.message).toContain(field);
    }
  });

  describe('authorisation', () => {
    const routes = [
      `/v1/usage/summary${qs({ from: FROM, to: TO })}`,
      `/v1/usage/timeseries${qs({ from: FROM, to: TO })}`,
      `/v1/usage/events${qs({ from: FROM, to: TO })}`,
      '/v1/usage/events/evt_a_000',
    ];
    const withAccount = (path: string, accountId: string) => `${path}${path.includes('?') ? '&' : '?'}account_id=${accountId}`;

    beforeEach(async () => {
      await api.ingest(dataset());
    });

    it.each(routes)('%s: no key or a bad key 401, another account 404, admin without account_id 400', async (path) => {
      expect((await api.get(path, null)).status).toBe(401);
      expect((await api.get(path, 'tm_live_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB')).status).toBe(401);
      expect((await api.get(path, keyA)).status).toBe(200);
      const other = await api.get(withAccount(path, A), keyB);
      expect(other.status).toBe(404);
      expect(other.body.error.code).toBe('not_found');
      expect((await api.get(withAccount(path, A), keyA)).status).toBe(200);
      const adminBare = await api.get(path, admin);
      expect(adminBare.status).toBe(400);
      expect(adminBare.body.error.details.field).toBe('account_id');
      expect((await api.get(withAccount(path, A), admin)).status).toBe(200);
    });

    it("never shows another account's event, data or existence", async () => {
      // B's own key, no account_id: A's event is as missing as a non-existent one.
      const foreign = await api.get('/v1/usage/events/evt_a_000', keyB);
      const missing = await api.get('/v1/usage/events/evt_does_not_exist', keyB);
      expect(foreign.status).toBe(404);
      expect(foreign.body).toEqual(missing.body);
      // An admin naming the wrong account for an event gets the same 404.
      expect((await api.get(withAccount('/v1/usage/events/evt_a_000', B), admin)).status).toBe(404);
      const bSummary = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO })}`, keyB);
      expect(bSummary.body.account_id).toBe(B);
      expect(bSummary.body.totals.requests).toBe(6);
      const bEvents = await api.get(`/v1/usage/events${qs({ from: FROM, to: TO, limit: 1000 })}`, keyB);
      expect(new Set(bEvents.body.data.map((r: { account_id: string }) => r.account_id))).toEqual(new Set([B]));
    });

    it('/v1/prices: 401 without a key, open to account and admin keys', async () => {
      expect((await api.get('/v1/prices', null)).status).toBe(401);
      expect((await api.get('/v1/prices', keyB)).status).toBe(200);
      expect((await api.get('/v1/prices', admin)).status).toBe(200);
    });
  });
});
