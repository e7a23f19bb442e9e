import { createDatabase, PriceBookRepository, RepriceRepository, UsageEventsRepository } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor } from '@tokenmeter/ingest';
import { aUsageEvent, deepseekUsage, type GatewayEvent } from '../factories/usage-events';
import { rollupDifferences, TEST_DATABASE_URL, totals, useTestDatabase } from '../helpers/tokenmeter-db';
import { asMessages } from '../helpers/ingest';

describe('UsageIngestor against Postgres', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let prices: PriceBookCache;
  let events: UsageEventsRepository;
  const now = new Date('2026-11-28T12:00:00Z');

  beforeEach(async () => {
    prices = new PriceBookCache(new PriceBookRepository(db.pool));
    events = new UsageEventsRepository(db.pool);
    ingestor = new UsageIngestor(events, prices, () => now);
  });

  it('stores each event once: redeliveries are duplicates, a changed payload is a conflict admins can list', async () => {
    const e1 = aUsageEvent();
    const e2 = aUsageEvent();
    const e1Changed: GatewayEvent = { ...e1, usage: { input_tokens: 9999, output_tokens: 500, cache_read_tokens: 200 } };

    const first = await ingestor.ingest(asMessages([e1, e2, e1, e1Changed]), 'http');
    expect(first.map((o) => o.status)).toEqual(['accepted', 'accepted', 'duplicate', 'conflict']);

    const again = await ingestor.ingest(asMessages([e2, e1Changed]), 'kafka');
    expect(again.map((o) => o.status)).toEqual(['duplicate', 'conflict']);

    const { rows: conflicts } = await db.pool.query('SELECT event_id FROM event_conflicts');
    expect(conflicts).toEqual([{ event_id: e1.event_id }]);

    // deepseek-r1: 1000 x 0.5714 + 500 x 2.2857 + 200 x 0.2286, per million = 0.00175997 per event
    const t = await totals(db);
    expect(t.raw).toEqual({
      requests: '2',
      unpriced: '0',
      input_tokens: '2000',
      output_tokens: '1000',
      cache_read_tokens: '400',
      cache_write_tokens: '0',
      reasoning_tokens: '0',
      input_cost_usd: '0.0011428',
      output_cost_usd: '0.0022857',
      cache_read_cost_usd: '0.00009144',
      cache_write_cost_usd: '0',
      cost_usd: '0.00351994',
    });
    expect(t.rollup).toEqual(t.raw);
  });

  it('writes every usage_events and usage_hourly column where it belongs, on both write paths', async () => {
    // COPY is positional: a value written under its neighbour's column still stores. So every
    // count and every cost differs from every other here, and each column is read back by name.
    // claude-sonnet-4 at 3 / 15 / 0.30 / 3.75 per M: input 11 -> 0.000033, output 23 -> 0.000345,
    // cache read 37 -> 0.0000111, cache write 41 -> 0.00015375; total 0.00054285.
    const usage = { input_tokens: 11, output_tokens: 23, cache_read_tokens: 37, cache_write_tokens: 41, reasoning_tokens: 5 };
    const bulk = aUsageEvent({ model: 'claude-sonnet-4', request_id: 'req_bulk', usage, metadata: { route: 'a' } });
    const setBased = aUsageEvent({ model: 'claude-sonnet-4', api_key_id: null, request_id: null, occurred_at: '2026-11-15T11:00:00.000Z', usage });
    await ingestor.ingest(asMessages([bulk]), 'kafka');
    expect(events.writePaths).toEqual({ bulk: 1, setBased: 0 });
    // The redelivery of `bulk` sends this chunk down the staging-table path.
    await ingestor.ingest(asMessages([bulk, setBased]), 'http');
    expect(events.writePaths).toEqual({ bulk: 1, setBased: 1 });

    const { rows } = await db.pool.query(
      `SELECT e.event_id, account_id, api_key_id, model, request_id, occurred_at, abs(extract(epoch FROM priced_at - received_at)) <= 0.001 AS priced_on_arrival,
              input_tokens::text, output_tokens::text, cache_read_tokens::text, cache_write_tokens::text, reasoning_tokens::text,
              usage_raw::text, usage_format, metadata::text, payload_hash, v.model_id AS price_model, v.input_per_mtok::text AS list_input,
              input_cost_usd::text, output_cost_usd::text, cache_read_cost_usd::text, cache_write_cost_usd::text, cost_usd::text,
              flags, source, price_override_id, invoice_id
       FROM usage_events e JOIN price_versions v ON v.id = e.price_version_id ORDER BY occurred_at`,
    );
    const stored = {
      account_id: 'acct_test',
      model: 'claude-sonnet-4',
      priced_on_arrival: true, // both the transaction's time, to the millisecond
      input_tokens: '11',
      output_tokens: '23',
      cache_read_tokens: '37',
      cache_write_tokens: '41',
      reasoning_tokens: '5',
      usage_format: 'canonical',
      price_model: 'claude-sonnet-4',
      list_input: '3.0000000000',
      input_cost_usd: '0.000033',
      output_cost_usd: '0.000345',
      cache_read_cost_usd: '0.0000111',
      cache_write_cost_usd: '0.00015375',
      cost_usd: '0.00054285',
      flags: [],
      price_override_id: null,
      invoice_id: null,
    };
    expect(rows).toEqual([
      {
        ...stored,
        event_id: bulk.event_id,
        api_key_id: 'key_test',
        request_id: 'req_bulk',
        occurred_at: new Date(bulk.occurred_at),
        usage_raw: JSON.stringify(usage),
        metadata: '{"route":"a"}',
        payload_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        source: 'kafka',
      },
      {
        ...stored,
        event_id: setBased.event_id,
        api_key_id: '',
        request_id: null,
        occurred_at: new Date(setBased.occurred_at),
        usage_raw: JSON.stringify(usage),
        metadata: null,
        payload_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        source: 'http',
      },
    ]);
    expect(rows[0].payload_hash).not.toBe(rows[1].payload_hash);

    const rollups = await db.pool.query(
      `SELECT account_id, api_key_id, model, hour, requests::text, unpriced_requests::text, input_tokens::text, output_tokens::text,
              cache_read_tokens::text, cache_write_tokens::text, reasoning_tokens::text, input_cost_usd::text, output_cost_usd::text,
              cache_read_cost_usd::text, cache_write_cost_usd::text, cost_usd::text
       FROM usage_hourly ORDER BY hour`,
    );
    const rolled = {
      account_id: 'acct_test',
      model: 'claude-sonnet-4',
      requests: '1',
      unpriced_requests: '0',
      input_tokens: '11',
      output_tokens: '23',
      cache_read_tokens: '37',
      cache_write_tokens: '41',
      reasoning_tokens: '5',
      input_cost_usd: '0.000033',
      output_cost_usd: '0.000345',
      cache_read_cost_usd: '0.0000111',
      cache_write_cost_usd: '0.00015375',
      cost_usd: '0.00054285',
    };
    expect(rollups.rows).toEqual([
      { ...rolled, api_key_id: 'key_test', hour: new Date('2026-11-15T10:00:00Z') },
      { ...rolled, api_key_id: '', hour: new Date('2026-11-15T11:00:00Z') },
    ]);
    expect(await rollupDifferences(db)).toEqual([]);
  });

  it('a chunk mixing new and already stored events stores only the new ones and rolls up only those', async () => {
    // The first write is all new (bulk COPY path); the second hits the unique index on its stored
    // events, so it must fall back to the set-based path without losing its new events.
    const stored = Array.from({ length: 30 }, (_, i) => aUsageEvent({ account_id: `acct_${i % 3}` }));
    const fresh = Array.from({ length: 20 }, (_, i) => aUsageEvent({ account_id: `acct_${i % 4}`, model: i % 5 === 0 ? 'no-such-model' : 'deepseek-r1' }));
    await ingestor.ingest(asMessages(stored), 'kafka');
    expect(events.writePaths).toEqual({ bulk: 1, setBased: 0 });
    const mixed = await ingestor.ingest(asMessages([...fresh.slice(0, 10), ...stored.slice(0, 5), ...fresh.slice(10)]), 'kafka');
    expect(mixed.map((o) => o.status)).toEqual([...Array(10).fill('accepted'), ...Array(5).fill('duplicate'), ...Array(10).fill('accepted')]);
    expect(events.writePaths).toEqual({ bulk: 1, setBased: 1 });
    const t = await totals(db);
    expect(t.raw.requests).toBe('50');
    expect(t.raw.unpriced).toBe('4');
    expect(t.raw.cost_usd).toBe('0.08095862'); // 46 priced x 0.00175997
    expect(t.rollup).toEqual(t.raw);
  });

  it('a transaction rolled back after creating its staging tables does not break the next one on that connection', async () => {
    // The temp tables are created on first use inside a transaction; if that transaction rolls
    // back they are gone, and the next chunk on the same connection must create them again
    // instead of failing (which would dead-letter valid events as storage errors).
    const single = createDatabase(TEST_DATABASE_URL, 1);
    await db.pool.query(`CREATE FUNCTION test_fail_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.account_id = 'acct_poison' THEN RAISE EXCEPTION 'injected rollup failure'; END IF; RETURN NEW; END $$`);
    await db.pool.query('CREATE TRIGGER test_fail_rollup BEFORE INSERT ON usage_hourly FOR EACH ROW EXECUTE FUNCTION test_fail_rollup()');
    try {
      const onOneConnection = new UsageIngestor(new UsageEventsRepository(single.pool), prices, () => now);
      await expect(onOneConnection.ingest(asMessages([aUsageEvent({ account_id: 'acct_poison' })]), 'kafka')).rejects.toThrow(/injected rollup failure/);
      const next = await onOneConnection.ingest(asMessages([aUsageEvent(), aUsageEvent()]), 'kafka');
      expect(next.map((o) => o.status)).toEqual(['accepted', 'accepted']);
      const t = await totals(db);
      expect(t.raw.requests).toBe('2');
      expect(t.rollup).toEqual(t.raw);
    } finally {
      await db.pool.query('DROP TRIGGER test_fail_rollup ON usage_hourly; DROP FUNCTION test_fail_rollup()');
      await single.close();
    }
  });

  it('stores the exact cost per token type and the price version in force', async () => {
    const e = aUsageEvent({ usage: deepseekUsage(1_234_567, 234_567, 7_654_321) });
    await ingestor.ingest(asMessages([e]), 'kafka');
    const { rows } = await db.pool.query(
      `SELECT input_tokens::text, cache_read_tokens::text, trim_scale(input_cost_usd)::text AS input_cost_usd,
              trim_scale(output_cost_usd)::text AS output_cost_usd, trim_scale(cache_read_cost_usd)::text AS cache_read_cost_usd,
              trim_scale(cost_usd)::text AS cost_usd, trim_scale(v.input_per_mtok)::text AS input_per_mtok
       FROM usage_events e JOIN price_versions v ON v.id = e.price_version_id`,
    );
    expect(rows[0]).toEqual({
      input_tokens: '1000000', // prompt - cache hits
      cache_read_tokens: '234567',
      input_cost_usd: '0.5714',
      output_cost_usd: '17.4954815097', // 7,654,321 x 2.2857 / 1e6
      cache_read_cost_usd: '0.0536220162', // 234,567 x 0.2286 / 1e6
      cost_usd: '18.1205035259',
      input_per_mtok: '0.5714',
    });
  });

  it('prices by occurred_at, with a price change at an exact instant', async () => {
    await new PriceBookRepository(db.pool).createPriceVersion({
      modelId: 'deepseek-r1',
      effectiveFrom: new Date('2026-11-20T00:00:00.000Z'),
      inputPerMTok: '1',
      outputPerMTok: '2',
      cacheReadPerMTok: '0.5',
      cacheWritePerMTok: null,
    });
    const usage = { input_tokens: 1_000_000, output_tokens: 0, cache_read_tokens: 0 };
    const before = aUsageEvent({ occurred_at: '2026-11-19T23:59:59.999Z', usage });
    const at = aUsageEvent({ occurred_at: '2026-11-20T00:00:00.000Z', usage });
    // Arrival order must not matter: the later event is ingested first.
    await ingestor.ingest(asMessages([at, before]), 'kafka');
    const { rows } = await db.pool.query('SELECT event_id, trim_scale(cost_usd)::text AS cost_usd FROM usage_events');
    const cost = Object.fromEntries(rows.map((r) => [r.event_id, r.cost_usd]));
    expect(cost[before.event_id]).toBe('0.5714');
    expect(cost[at.event_id]).toBe('1');
  });

  it('keeps usage of a model without a price as unpriced, then prices it on reprice', async () => {
    const events = [1, 2, 3].map(() => aUsageEvent({ model: 'brand-new-model', usage: { input_tokens: 2_000_000, output_tokens: 1_000_000 } }));
    const outcomes = await ingestor.ingest(asMessages(events), 'kafka');
    expect(outcomes.every((o) => o.status === 'accepted' && !o.priced)).toBe(true);
    let t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '3', cost_usd: '0', unpriced: '3' });
    expect(t.rollup).toEqual(t.raw);

    const repo = new PriceBookRepository(db.pool);
    await repo.upsertModel({ id: 'brand-new-model', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    await repo.createPriceVersion({
      modelId: 'brand-new-model',
      effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      inputPerMTok: '0.1',
      outputPerMTok: '0.3',
      cacheReadPerMTok: '0.01',
      cacheWritePerMTok: null,
    });
    const reprice = new RepriceService(new RepriceRepository(db.pool), prices);
    const result = await reprice.repriceUnpriced({ from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-12-01T00:00:00Z') });
    expect(result).toEqual({ examined: 3, priced: 3 });

    t = await totals(db);
    // 3 x (2 x 0.1 + 1 x 0.3) = 1.5
    expect(t.raw).toMatchObject({ requests: '3', cost_usd: '1.5', unpriced: '0' });
    expect(t.rollup).toEqual(t.raw);
    // Running it again finds nothing left to price.
    expect(await reprice.repriceUnpriced({ from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-12-01T00:00:00Z') })).toEqual({ examined: 0, priced: 0 });
  });

  it('rejects malformed events with the reason and keeps the raw payload', async () => {
    const good = aUsageEvent();
    const outcomes = await ingestor.ingest(
      [
        { value: Buffer.from('{not json'), key: 'acct_x', kafka: { topic: 't', partition: 0, offset: '7' } },
        { value: Buffer.from(JSON.stringify({ ...good, event_id: 'evt_bad', usage: deepseekUsage(100, 10, 5) })), key: null },
        {
          value: Buffer.from(JSON.stringify({
            ...aUsageEvent(),
            usage: { prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 50, prompt_cache_miss_tokens: 40 },
          })),
          key: null,
        },
        { value: Buffer.from(JSON.stringify(good)), key: null },
      ],
      'kafka',
    );
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'accepted', 'rejected', 'accepted']);
    const { rows } = await db.pool.query('SELECT reason_code, reason, raw_payload, "offset"::text FROM rejected_events ORDER BY id');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ reason_code: 'invalid_json', raw_payload: '{not json', offset: '7' });
    expect(rows[1].reason_code).toBe('invariant');
    expect(rows[1].reason).toMatch(/prompt_cache_hit_tokens/);
  });

  it('stores free text byte for byte: tabs, newlines, backslashes and quotes survive the bulk path', async () => {
    const tricky = 'tab\there, newline\nthere, backslash \\ and \\N, "quotes", \r, unicode \u00e9\u{1F600}';
    const e = aUsageEvent({ request_id: tricky, metadata: { note: tricky, nested: { also: tricky } } });
    await ingestor.ingest(asMessages([e]), 'kafka');
    const { rows } = await db.pool.query('SELECT request_id, metadata::text, usage_raw::text FROM usage_events');
    expect(rows[0].request_id).toBe(tricky);
    expect(JSON.parse(rows[0].metadata)).toEqual({ note: tricky, nested: { also: tricky } });
    expect(JSON.parse(rows[0].usage_raw)).toEqual(e.usage);
    // A redelivery hashes the same: the stored payload is the one that was sent.
    expect((await ingestor.ingest(asMessages([e]), 'kafka'))[0].status).toBe('duplicate');
  });

  it('flags usage beyond the model context window but still stores and prices it', async () => {
    const e = aUsageEvent({ usage: { input_tokens: 200_000, output_tokens: 10 } });
    const [outcome] = await ingestor.ingest(asMessages([e]), 'http');
    expect(outcome).toMatchObject({ status: 'accepted', priced: true, flags: ['exceeds_context_window'] });
    const { rows } = await db.pool.query('SELECT flags, cost_usd IS NOT NULL AS priced FROM usage_events');
    expect(rows[0]).toEqual({ flags: ['exceeds_context_window'], priced: true });
  });

  it('counts every event exactly once when batches with overlapping events run concurrently', async () => {
    const pool = Array.from({ length: 2000 }, (_, i) =>
      aUsageEvent({ account_id: `acct_${i % 7}`, occurred_at: new Date(Date.UTC(2026, 10, 1 + (i % 20), i % 24)).toISOString() }),
    );
    // Four writers, each with an overlapping slice of the same events, in a different order.
    const slices = [pool.slice(0, 1200), pool.slice(400, 1600).reverse(), pool.slice(800, 2000), pool.filter((_, i) => i % 2 === 0)];
    const results = await Promise.all(slices.map((s) => ingestor.ingest(asMessages(s), 'kafka')));
    const accepted = results.flat().filter((o) => o.status === 'accepted').length;
    expect(accepted).toBe(2000);
    const t = await totals(db);
    expect(t.raw.requests).toBe('2000');
    expect(t.raw.cost_usd).toBe('3.51994'); // 2000 x 0.00175997
    expect(t.rollup).toEqual(t.raw);
  });
});
