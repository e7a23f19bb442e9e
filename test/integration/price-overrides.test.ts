import { PriceBookRepository, PriceOverridesRepository, RepriceRepository, Transactor, UsageEventsRepository } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor } from '@tokenmeter/ingest';
import { aUsageEvent } from '../factories/usage-events';
import { totals, useTestDatabase } from '../helpers/tokenmeter-db';

describe('account price overrides in the ingest path', () => {
  const db = useTestDatabase();
  let prices: PriceBookCache;
  let ingestor: UsageIngestor;
  let overrides: PriceOverridesRepository;

  beforeEach(async () => {
    prices = new PriceBookCache(new PriceBookRepository(db.pool));
    ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), prices, () => new Date('2026-11-28T12:00:00Z'));
    overrides = new PriceOverridesRepository(db.pool);
  });

  const discount = (accountId: string, percent: string, modelId: string | null = null) =>
    overrides.createPriceOverride({
      accountId,
      modelId,
      kind: 'discount',
      discountPercent: percent,
      inputPerMTok: null,
      outputPerMTok: null,
      cacheReadPerMTok: null,
      cacheWritePerMTok: null,
      effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      effectiveTo: null,
    });

  it('a new override changes the cached price book revision and prices the very next batch', async () => {
    const before = (await prices.current()).revision;
    const created = await discount('acct_test', '12.5');
    expect((await prices.current()).revision).not.toBe(before);

    // 1000 x 0.5714 + 500 x 2.2857 + 200 x 0.2286 per million = 0.00175997 list, x 0.875
    await ingestor.ingest([{ value: aUsageEvent(), key: null }, { value: aUsageEvent({ account_id: 'acct_other' }), key: null }], 'kafka');
    const { rows } = await db.pool.query('SELECT account_id, trim_scale(cost_usd)::text AS cost_usd, price_override_id::text FROM usage_events ORDER BY account_id');
    expect(rows).toEqual([
      { account_id: 'acct_other', cost_usd: '0.00175997', price_override_id: null },
      { account_id: 'acct_test', cost_usd: '0.00153997375', price_override_id: created.id },
    ]);
    const t = await totals(db);
    expect(t.rollup).toEqual(t.raw);
  });

  it('repriceUnpriced applies overrides too', async () => {
    await ingestor.ingest([{ value: aUsageEvent({ model: 'later-model' }), key: null }], 'kafka');
    await new PriceBookRepository(db.pool).upsertModel({ id: 'later-model', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    await new PriceBookRepository(db.pool).createPriceVersion({
      modelId: 'later-model',
      effectiveFrom: new Date('2026-01-01T00:00:00Z'),
      inputPerMTok: '1',
      outputPerMTok: '1',
      cacheReadPerMTok: '1',
      cacheWritePerMTok: null,
    });
    const created = await discount('acct_test', '50', 'later-model');
    const reprice = new RepriceService(new RepriceRepository(db.pool), prices);
    expect(await reprice.repriceUnpriced({ from: new Date('2026-11-01Z'), to: new Date('2026-12-01Z') })).toEqual({ examined: 1, priced: 1 });
    const { rows } = await db.pool.query('SELECT trim_scale(cost_usd)::text AS cost_usd, price_override_id::text FROM usage_events');
    expect(rows).toEqual([{ cost_usd: '0.00085', price_override_id: created.id }]); // 1700 tokens x $1/M x 0.5
    const t = await totals(db);
    expect(t.rollup).toEqual(t.raw);

    // A range reprice right after finds nothing to change.
    const again = await reprice.repriceRange(new Transactor(db.pool), { from: new Date('2026-11-01Z'), to: new Date('2026-12-01Z') }, { dryRun: false });
    expect(again.totals).toMatchObject({ events: 1, eventsChanged: 0 });
  });

  it('a range reprice of events priced with a 4-dp discount on a 7-dp rate changes them once, then never again', async () => {
    // One token at 0.1234567/M less 12.34% costs 0.00000010822214322: 17 decimal places, stored
    // exactly. A reprice that compares at any fixed scale below that sees a change that is not
    // there, and rewrites (re-stamps priced_at on) every such event on every run.
    const book = new PriceBookRepository(db.pool);
    await book.upsertModel({ id: 'seven-dp', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    await book.createPriceVersion({
      modelId: 'seven-dp',
      effectiveFrom: new Date('2026-01-01T00:00:00Z'),
      inputPerMTok: '0.1234567',
      outputPerMTok: '0.7654321',
      cacheReadPerMTok: '0.0123457',
      cacheWritePerMTok: '0.2469134',
    });
    const usage = { input_tokens: 1, output_tokens: 3, cache_read_tokens: 7, cache_write_tokens: 11, reasoning_tokens: 2 };
    const ingested = await ingestor.ingest(
      [
        { value: aUsageEvent({ model: 'seven-dp', usage }), key: null },
        { value: aUsageEvent({ model: 'seven-dp', usage, occurred_at: '2026-11-16T10:30:00.000Z' }), key: null },
      ],
      'kafka',
    );
    expect(ingested).toMatchObject([{ status: 'accepted', priced: true }, { status: 'accepted', priced: true }]);
    await discount('acct_test', '12.34', 'seven-dp');
    const reprice = new RepriceService(new RepriceRepository(db.pool), prices);
    const range = { from: new Date('2026-11-01Z'), to: new Date('2026-12-01Z') };

    const first = await reprice.repriceRange(new Transactor(db.pool), range, { dryRun: false });
    expect(first.totals).toMatchObject({ events: 2, eventsChanged: 2 });
    const stored = async () =>
      (
        await db.pool.query(
          `SELECT event_id, xmin::text AS row_version, priced_at, input_cost_usd::text, output_cost_usd::text,
                  cache_read_cost_usd::text, cache_write_cost_usd::text, cost_usd::text
           FROM usage_events ORDER BY event_id`,
        )
      ).rows;
    const rollupVersions = async () => (await db.pool.query('SELECT xmin::text AS v FROM usage_hourly ORDER BY hour')).rows;
    const afterFirst = await stored();
    // 1 x 0.1234567 + 3 x 0.7654321 + 7 x 0.0123457 + 11 x 0.2469134 per M, x 0.8766, exactly
    expect(afterFirst[0]).toMatchObject({
      input_cost_usd: '0.00000010822214322',
      output_cost_usd: '0.00000201293333658',
      cache_read_cost_usd: '0.00000007575568434',
      cache_write_cost_usd: '0.00000238088715084',
      cost_usd: '0.00000457779831498',
    });
    let t = await totals(db);
    expect(t.rollup).toEqual(t.raw);
    const rollupsAfterFirst = await rollupVersions();

    const second = await reprice.repriceRange(new Transactor(db.pool), range, { dryRun: false });
    expect(second.totals).toEqual({ events: 2, eventsChanged: 0, costBeforeUsd: '0.00000915559662996', costAfterUsd: '0.00000915559662996' });
    expect(await stored()).toEqual(afterFirst); // same row versions: nothing was rewritten
    expect(await rollupVersions()).toEqual(rollupsAfterFirst);
    t = await totals(db);
    expect(t.rollup).toEqual(t.raw);
  });
});
