/**
 * The dashboard summaries read whole UTC months from usage_monthly, the whole days of the partial
 * months at a range's edges from usage_daily and only the hours of the partial days from
 * usage_hourly; the day time series reads days and hours only. Whatever the range, every answer
 * must be the raw events' own sums, to the last digit, with every connection in a time zone whose
 * midnight (and so first of the month) is not UTC's.
 */
import { createDatabase, PriceBookRepository, RepriceRepository, UsageEventsRepository, UsageReadRepository, type Database } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor, type IngestMessage } from '@tokenmeter/ingest';
import { aUsageEvent, deepseekUsage, openAiUsage, type GatewayEvent } from '../factories/usage-events';
import { resetDatabase, rollupDifferences, seedPriceBook, TEST_DATABASE_URL, totals } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

// UTC-03:30: a session time zone anything computed in it (date_trunc without 'UTC', ::date)
// would cut days 3.5 hours away from UTC midnight, and hours off by half an hour.
const SESSION_TIME_ZONE = 'America/St_Johns';
const A = 'acct_daily_a';
const B = 'acct_daily_b';
const MODELS = ['deepseek-r1', 'gpt-4o', 'claude-sonnet-4', 'unpriced-model'] as const;
const KEYS = ['key_1', 'key_2', null] as const;
const FIRST = Date.parse('2025-11-20T00:00:00Z');
const LAST = Date.parse('2027-01-10T00:00:00Z');

function usageFor(model: string, i: number): Record<string, unknown> {
  if (model === 'deepseek-r1') return deepseekUsage(1000 + (i % 97), 200, 300 + (i % 13));
  if (model === 'gpt-4o') return openAiUsage(2000 + 3 * (i % 31), 500, 100 + (i % 7), 20);
  return { input_tokens: 700 + (i % 11), output_tokens: 90 + i, cache_read_input_tokens: 1500, cache_creation_input_tokens: 40 * (i % 5) };
}

/**
 * A's events every 6 h 7 min 13 s from 2025-11-20 to 2027-01-10 (so they fall at every hour of
 * the day in turn), three models and an unpriced one, two keys and none; plus events exactly at
 * the UTC midnights and last milliseconds the edge ranges below cut at, and some of B's.
 */
function dataset(): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  const step = ((6 * 60 + 7) * 60 + 13) * 1000;
  for (let i = 0, at = FIRST; at < LAST; i++, at += step) {
    const model = MODELS[i % MODELS.length];
    events.push(
      aUsageEvent({ account_id: A, api_key_id: KEYS[Math.floor(i / 4) % 3], model, occurred_at: new Date(at).toISOString(), usage: usageFor(model, i) }),
    );
  }
  const edges = ['2026-01-01T00:00:00.000Z', '2025-12-31T23:59:59.999Z', '2026-10-01T00:00:00.000Z', '2026-10-31T23:59:59.999Z',
    '2026-10-05T03:00:00.000Z', '2026-10-05T20:59:59.999Z', '2026-10-06T00:00:00.000Z', '2026-11-01T00:00:00.000Z'];
  edges.forEach((at, i) => events.push(aUsageEvent({ account_id: A, api_key_id: KEYS[i % 3], model: MODELS[i % 3], occurred_at: at })));
  for (let i = 0; i < 40; i++) {
    events.push(aUsageEvent({ account_id: B, occurred_at: new Date(Date.parse('2026-10-01T00:00:00Z') + i * 5 * 3_600_000).toISOString() }));
  }
  return events;
}

/** [from, to) pairs, whole UTC hours: the ranges the month/day/hour split must get right. */
const RANGES: Record<string, [string, string]> = {
  month: ['2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z'],
  'calendar year': ['2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z'],
  '400 days, both edges mid-day': ['2025-12-01T07:00:00Z', '2027-01-05T07:00:00Z'],
  'starts mid-day': ['2026-10-03T05:00:00Z', '2026-10-20T00:00:00Z'],
  'ends mid-day': ['2026-10-03T00:00:00Z', '2026-10-20T17:00:00Z'],
  'both edges mid-day': ['2026-10-03T05:00:00Z', '2026-10-20T17:00:00Z'],
  'one partial day': ['2026-10-05T03:00:00Z', '2026-10-05T21:00:00Z'],
  'one whole day': ['2026-10-05T00:00:00Z', '2026-10-06T00:00:00Z'],
  'across one midnight, no whole day': ['2026-10-05T20:00:00Z', '2026-10-06T04:00:00Z'],
  'two partial days around one whole day': ['2026-10-04T22:00:00Z', '2026-10-06T01:00:00Z'],
  'one hour before midnight': ['2026-10-05T23:00:00Z', '2026-10-06T00:00:00Z'],
  'across new year, mid-day': ['2025-12-31T12:00:00Z', '2026-01-02T06:00:00Z'],
  'two whole months': ['2026-09-01T00:00:00Z', '2026-11-01T00:00:00Z'],
  'mid-month to mid-month across new year, both edges mid-day': ['2025-12-14T05:00:00Z', '2026-11-17T19:00:00Z'],
  'starts mid-month, ends at a month': ['2026-08-20T00:00:00Z', '2026-11-01T00:00:00Z'],
  'starts at a month, ends mid-February mid-day': ['2026-02-01T00:00:00Z', '2026-03-15T13:00:00Z'],
  'whole months around new year, edge hours only': ['2025-11-30T22:00:00Z', '2026-02-01T03:00:00Z'],
  'one whole month between edge days': ['2026-08-31T00:00:00Z', '2026-10-02T00:00:00Z'],
  'across one month end, no whole month': ['2026-09-20T06:00:00Z', '2026-10-10T06:00:00Z'],
  'across a year end, whole months of both years': ['2026-10-15T00:00:00Z', '2027-01-09T11:00:00Z'],
  // Months of 28 and 30 days at the leading edge: the next month start is no fixed step away.
  'starts mid-February': ['2026-02-10T09:00:00Z', '2026-06-01T00:00:00Z'],
  'starts mid-November, ends at new year': ['2025-11-25T00:00:00Z', '2026-01-01T00:00:00Z'],
  'no usage': ['2024-01-01T00:00:00Z', '2024-02-01T00:00:00Z'],
};

const SUMS = `count(*)::text AS requests, count(*) FILTER (WHERE price_version_id IS NULL)::text AS unpriced_requests,
  coalesce(sum(input_tokens), 0)::text AS input_tokens, coalesce(sum(output_tokens), 0)::text AS output_tokens,
  coalesce(sum(cache_read_tokens), 0)::text AS cache_read_tokens, coalesce(sum(cache_write_tokens), 0)::text AS cache_write_tokens,
  trim_scale(coalesce(sum(input_cost_usd), 0))::text AS input_cost_usd, trim_scale(coalesce(sum(output_cost_usd), 0))::text AS output_cost_usd,
  trim_scale(coalesce(sum(cache_read_cost_usd), 0))::text AS cache_read_cost_usd,
  trim_scale(coalesce(sum(cache_write_cost_usd), 0))::text AS cache_write_cost_usd, trim_scale(coalesce(sum(cost_usd), 0))::text AS cost_usd`;

/** UsageFilter's narrowing ('' is "no API key"), over raw events: $1 account, $2 from, $3 to, $4 model, $5 key. */
type Narrowing = { model?: string; apiKeyId?: string };
const RAW_WHERE = `account_id = $1 AND occurred_at >= $2 AND occurred_at < $3
  AND ($4::text IS NULL OR model = $4) AND ($5::text IS NULL OR api_key_id = $5)`;

const TOTALS_FIELDS = {
  requests: 'requests',
  unpricedRequests: 'unpriced_requests',
  inputTokens: 'input_tokens',
  outputTokens: 'output_tokens',
  cacheReadTokens: 'cache_read_tokens',
  cacheWriteTokens: 'cache_write_tokens',
  inputCostUsd: 'input_cost_usd',
  outputCostUsd: 'output_cost_usd',
  cacheReadCostUsd: 'cache_read_cost_usd',
  cacheWriteCostUsd: 'cache_write_cost_usd',
  costUsd: 'cost_usd',
} as const;
const asTotals = (r: Record<string, string>) =>
  Object.fromEntries(Object.entries(TOTALS_FIELDS).map(([field, column]) => [field, r[column]])) as Record<keyof typeof TOTALS_FIELDS, string>;

describe('usage_monthly and usage_daily: whole months, then whole days, then edge hours, the same sums as raw events', () => {
  let db: Database;
  let reads: UsageReadRepository;

  /** The raw events' answer in the repository's shapes (largest cost first, ties by key, no key last). */
  async function rawSummary(accountId: string, [from, to]: [string, string], narrow: Narrowing = {}) {
    const q = async (group: string, order: string) =>
      (await db.pool.query(`SELECT ${group} ${SUMS} FROM usage_events WHERE ${RAW_WHERE} ${order}`, [accountId, from, to, narrow.model ?? null, narrow.apiKeyId ?? null])).rows;
    const [totalsRow] = await q('', '');
    const byModel = await q('model,', 'GROUP BY model ORDER BY sum(cost_usd) DESC NULLS LAST, model');
    const byKey = await q("NULLIF(api_key_id, '') AS api_key_id,", "GROUP BY api_key_id ORDER BY sum(cost_usd) DESC NULLS LAST, NULLIF(api_key_id, '') NULLS LAST");
    return {
      totals: asTotals(totalsRow),
      byModel: byModel.map((r) => ({ model: r.model, ...asTotals(r) })),
      byApiKey: byKey.map((r) => ({ apiKeyId: r.api_key_id, ...asTotals(r) })),
    };
  }

  /** The raw events' buckets, narrowed to one model or key like UsageFilter, grouped by `group`. */
  async function rawBuckets([from, to]: [string, string], granularity: 'hour' | 'day', group: string, narrow: Narrowing = {}) {
    const { rows } = await db.pool.query(
      `SELECT date_trunc('${granularity}', occurred_at, 'UTC') AS start, ${group} AS grp, ${SUMS}
       FROM usage_events WHERE ${RAW_WHERE}
       GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST`,
      [A, from, to, narrow.model ?? null, narrow.apiKeyId ?? null],
    );
    return rows.map((r) => ({ start: r.start, group: r.grp, ...asTotals(r) }));
  }

  async function expectEveryRangeToMatchRawEvents() {
    for (const [name, range] of Object.entries(RANGES)) {
      const [from, to] = range.map((s) => new Date(s));
      // The range's name in each comparison, so a failure says which range it was.
      expect({ name, summary: await reads.summarizeAccount(A, from, to) }).toEqual({ name, summary: await rawSummary(A, range) });
      const cell = { model: 'gpt-4o', apiKeyId: '' };
      expect({ name, cell: await reads.summarizeAccount(A, from, to, cell) }).toEqual({ name, cell: await rawSummary(A, range, cell) });
      expect({ name, days: await reads.listBuckets(A, from, to, 'day', 'none') }).toEqual({ name, days: await rawBuckets(range, 'day', 'NULL::text') });
      expect({ name, days: await reads.listBuckets(A, from, to, 'day', 'model', { apiKeyId: 'key_1' }) }).toEqual({
        name,
        days: await rawBuckets(range, 'day', 'model', { apiKeyId: 'key_1' }),
      });
      expect({ name, hours: await reads.listBuckets(A, from, to, 'hour', 'api_key', { model: 'gpt-4o' }) }).toEqual({
        name,
        hours: await rawBuckets(range, 'hour', "NULLIF(api_key_id, '')", { model: 'gpt-4o' }),
      });
    }
  }

  beforeAll(async () => {
    db = createDatabase(`${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c TimeZone=${SESSION_TIME_ZONE}`)}`, 3);
    reads = new UsageReadRepository(db.pool);
    expect((await db.pool.query('SHOW TimeZone')).rows[0].TimeZone).toBe(SESSION_TIME_ZONE);
    await resetDatabase(db);
    await seedPriceBook(db);
    const prices = new PriceBookCache(new PriceBookRepository(db.pool));
    const repository = new UsageEventsRepository(db.pool);
    const ingestor = new UsageIngestor(repository, prices, () => new Date('2027-06-01T00:00:00Z'));
    const messages: IngestMessage[] = dataset().map((value) => ({ value, key: null }));
    // Chunks of 500, the second half re-sending the tail of the chunk before it: both write paths.
    for (let start = 0; start < messages.length; start += 500) {
      await ingestor.ingest(messages.slice(Math.max(0, start - (start / 500) % 2 * 50), start + 500), 'kafka');
    }
    expect(repository.writePaths.bulk).toBeGreaterThan(0);
    expect(repository.writePaths.setBased).toBeGreaterThan(0);
  });
  afterAll(() => db.close());

  it('answers every range, edge and grain exactly as the raw events do, in any session time zone', async () => {
    expect(await rollupDifferences(db)).toEqual([]);
    const t = await totals(db);
    expect(t.rollup).toEqual(t.raw);
    await expectEveryRangeToMatchRawEvents();
    // The admin report over all accounts splits the same way.
    const [from, to] = RANGES['both edges mid-day'].map((s) => new Date(s));
    const { rows } = await db.pool.query(
      `SELECT account_id, ${SUMS} FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1 ORDER BY sum(cost_usd) DESC, 1`,
      [from, to],
    );
    expect(await reads.listAccountTotals(from, to, 10)).toEqual(rows.map((r) => ({ accountId: r.account_id, ...asTotals(r) })));
  });

  it('reads whole months from usage_monthly, edge days from usage_daily and edge hours from usage_hourly', async () => {
    const ranges = {
      month: RANGES.month,
      edges: RANGES['both edges mid-day'],
      monthAndDays: ['2026-08-31T00:00:00Z', '2026-10-11T00:00:00Z'] as [string, string],
    };
    const summaryRequests = async ([from, to]: [string, string]) => (await reads.summarizeAccount(A, new Date(from), new Date(to))).totals.requests;
    const seriesRequests = async ([from, to]: [string, string]) =>
      (await reads.listBuckets(A, new Date(from), new Date(to), 'day', 'none')).reduce((n, b) => n + BigInt(b.requests), 0n).toString();
    const before = {
      month: await summaryRequests(ranges.month),
      edges: await summaryRequests(ranges.edges),
      monthAndDays: await summaryRequests(ranges.monthAndDays),
      monthSeries: await seriesRequests(ranges.month),
    };
    // Changes one row: the first (by time, then key) at or after `at`.
    const bump = (table: string, time: string, at: string, by: number) =>
      db.pool.query(
        `UPDATE ${table} SET requests = requests + $3
         WHERE (account_id, api_key_id, model, ${time}) = (
           SELECT account_id, api_key_id, model, ${time} FROM ${table} WHERE account_id = $1 AND ${time} >= $2 ORDER BY ${time}, api_key_id, model LIMIT 1)`,
        [A, at, by],
      );
    // More requests in one row of each table: October's month row (seen by a summary of October
    // only), a day row of 2026-10-10 (seen by a summary whose October is partial, and by the day
    // series), an hour row of that whole day (seen by none), the edge hour 2026-10-03T05:00 (seen
    // only where it is an edge hour).
    const bumps: [string, string, string, number][] = [
      ['usage_monthly', 'month', '2026-10-01T00:00:00Z', 1_000_000],
      ['usage_daily', 'day', '2026-10-10T00:00:00Z', 1],
      ['usage_hourly', 'hour', '2026-10-10T00:00:00Z', 100],
      ['usage_hourly', 'hour', '2026-10-03T05:00:00Z', 10_000],
    ];
    try {
      for (const [table, time, at, by] of bumps) await bump(table, time, at, by);
      const plus = (n: string, by: number) => String(BigInt(n) + BigInt(by));
      expect(await summaryRequests(ranges.month)).toBe(plus(before.month, 1_000_000));
      expect(await summaryRequests(ranges.edges)).toBe(plus(before.edges, 1 + 10_000));
      expect(await summaryRequests(ranges.monthAndDays)).toBe(plus(before.monthAndDays, 1));
      expect(await seriesRequests(ranges.month)).toBe(plus(before.monthSeries, 1));
      expect(await rollupDifferences(db)).toHaveLength(2 * bumps.length); // each bumped row, once from each side
    } finally {
      for (const [table, time, at, by] of bumps) await bump(table, time, at, -by);
    }
    expect(await rollupDifferences(db)).toEqual([]);
  });

  it('reprice moves the day and month rows with the hour rows', async () => {
    const before = await totals(db);
    expect(before.raw.unpriced).not.toBe('0');
    const priceBook = new PriceBookRepository(db.pool);
    await priceBook.upsertModel({ id: 'unpriced-model', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    await priceBook.createPriceVersion({
      modelId: 'unpriced-model',
      effectiveFrom: new Date('2025-01-01T00:00:00Z'),
      inputPerMTok: '0.37',
      outputPerMTok: '1.13',
      cacheReadPerMTok: '0.011',
      cacheWritePerMTok: '0.53',
    });
    const reprice = new RepriceService(new RepriceRepository(db.pool), new PriceBookCache(priceBook));
    const result = await reprice.repriceUnpriced({ from: new Date('2025-01-01T00:00:00Z'), to: new Date('2028-01-01T00:00:00Z') });
    expect(result.priced).toBe(Number(before.raw.unpriced));
    const after = await totals(db);
    expect(after.raw.unpriced).toBe('0');
    expect(after.rollup).toEqual(after.raw);
    expect(await rollupDifferences(db)).toEqual([]);
    await expectEveryRangeToMatchRawEvents();
  });
});
