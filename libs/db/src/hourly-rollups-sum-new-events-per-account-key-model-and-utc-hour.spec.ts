import { costUnitsToString, type TokenCostUnits } from '@tokenmeter/billing';
import { ROLLUP_COLUMNS, hourlyRollups, type HourlyRollupRow } from './hourly-rollups';
import type { NewUsageEventRow } from './usage-event-rows';

let n = 0;
function row(overrides: Partial<NewUsageEventRow> = {}): NewUsageEventRow {
  n++;
  return {
    eventId: `evt_${n}`,
    accountId: 'acct_a',
    apiKeyId: 'key_a',
    model: 'm',
    requestId: null,
    occurredAt: new Date('2026-11-15T10:30:00.000Z'),
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    usageRawJson: '{}',
    usageFormat: 'canonical',
    metadataJson: null,
    payloadHash: 'h',
    priceVersionId: '1',
    priceOverrideId: null,
    costs: costs(0n, 0n, 0n, 0n),
    flags: [],
    source: 'kafka',
    ...overrides,
  };
}

function costs(input: bigint, output: bigint, cacheRead: bigint, cacheWrite: bigint): TokenCostUnits {
  return { input, output, cacheRead, cacheWrite, total: input + output + cacheRead + cacheWrite };
}

const unpriced = { priceVersionId: null, costs: null } as const;

/** Costs as decimal text, for readable expectations. */
function readable(r: HourlyRollupRow) {
  return {
    ...r,
    input_cost_usd: costUnitsToString(r.input_cost_usd),
    output_cost_usd: costUnitsToString(r.output_cost_usd),
    cache_read_cost_usd: costUnitsToString(r.cache_read_cost_usd),
    cache_write_cost_usd: costUnitsToString(r.cache_write_cost_usd),
    cost_usd: costUnitsToString(r.cost_usd),
  };
}

const key = (r: HourlyRollupRow) => [r.account_id, r.api_key_id, r.model, r.hour].join('\u0000');
const byKey = (a: HourlyRollupRow, b: HourlyRollupRow) => (key(a) < key(b) ? -1 : 1);

describe('hourlyRollups sums new events per (account, api key, model, UTC hour)', () => {
  it('adds every measure from its own field: each token type and each cost type to its own column', () => {
    // Every number differs from every other, so a field summed into its neighbour's column shows.
    const a = row({
      inputTokens: 1, outputTokens: 20, cacheReadTokens: 300, cacheWriteTokens: 4000, reasoningTokens: 7, costs: costs(11n, 220n, 3300n, 44000n),
    });
    const b = row({
      inputTokens: 2, outputTokens: 40, cacheReadTokens: 600, cacheWriteTokens: 8000, reasoningTokens: 9, costs: costs(13n, 260n, 3900n, 52000n),
    });
    expect(hourlyRollups([a, b])).toEqual([
      {
        account_id: 'acct_a',
        api_key_id: 'key_a',
        model: 'm',
        hour: '2026-11-15T10:00:00.000Z',
        requests: 2,
        unpriced_requests: 0,
        input_tokens: 3,
        output_tokens: 60,
        cache_read_tokens: 900,
        cache_write_tokens: 12000,
        reasoning_tokens: 16,
        input_cost_usd: 24n,
        output_cost_usd: 480n,
        cache_read_cost_usd: 7200n,
        cache_write_cost_usd: 96000n,
        cost_usd: 103704n,
      },
    ]);
  });

  it('yields exactly the usage_hourly columns, so the COPY codec has a value for each and no other', () => {
    const [r] = hourlyRollups([row()]);
    expect(Object.keys(r).sort()).toEqual([...ROLLUP_COLUMNS].sort());
  });

  it('an hour runs from :00:00.000 to :59:59.999 UTC; the next millisecond is the next row', () => {
    const rows = hourlyRollups([
      row({ occurredAt: new Date('2026-11-15T10:00:00.000Z'), inputTokens: 1 }),
      row({ occurredAt: new Date('2026-11-15T10:59:59.999Z'), inputTokens: 2 }),
      row({ occurredAt: new Date('2026-11-15T11:00:00.000Z'), inputTokens: 4 }),
      // 23:30 in UTC-5 is 04:30 UTC the next day: the hour is the UTC one.
      row({ occurredAt: new Date('2026-11-15T23:30:00.000-05:00'), inputTokens: 8 }),
    ]).sort(byKey);
    expect(rows.map((r) => [r.hour, r.requests, r.input_tokens])).toEqual([
      ['2026-11-15T10:00:00.000Z', 2, 3],
      ['2026-11-15T11:00:00.000Z', 1, 4],
      ['2026-11-16T04:00:00.000Z', 1, 8],
    ]);
  });

  it('keeps accounts, api keys ("" for none) and models apart', () => {
    const rows = hourlyRollups([
      row({ accountId: 'acct_a', apiKeyId: 'key_a', model: 'm', inputTokens: 1 }),
      row({ accountId: 'acct_b', apiKeyId: 'key_a', model: 'm', inputTokens: 2 }),
      row({ accountId: 'acct_a', apiKeyId: '', model: 'm', inputTokens: 4 }),
      row({ accountId: 'acct_a', apiKeyId: 'key_a', model: 'other', inputTokens: 8 }),
      row({ accountId: 'acct_a', apiKeyId: 'key_a', model: 'm', inputTokens: 16 }),
    ]).sort(byKey);
    expect(rows.map((r) => [r.account_id, r.api_key_id, r.model, r.requests, r.input_tokens])).toEqual([
      ['acct_a', '', 'm', 1, 4],
      ['acct_a', 'key_a', 'm', 2, 17],
      ['acct_a', 'key_a', 'other', 1, 8],
      ['acct_b', 'key_a', 'm', 1, 2],
    ]);
  });

  it('counts unpriced events as requests and unpriced_requests, with their tokens and no cost', () => {
    const rows = hourlyRollups([
      row({ ...unpriced, inputTokens: 5, outputTokens: 6, cacheWriteTokens: 7 }),
      row({ inputTokens: 1, costs: costs(10n ** 16n, 0n, 0n, 0n) }),
      row({ ...unpriced, inputTokens: 5 }),
    ]);
    expect(rows.map(readable)).toEqual([
      expect.objectContaining({
        requests: 3,
        unpriced_requests: 2,
        input_tokens: 11,
        output_tokens: 6,
        cache_write_tokens: 7,
        input_cost_usd: '0.000001',
        cost_usd: '0.000001',
        output_cost_usd: '0',
      }),
    ]);
  });

  it('a group of only unpriced events has zero costs, not missing ones', () => {
    const [r] = hourlyRollups([row({ ...unpriced, outputTokens: 3 })]);
    expect(readable(r)).toMatchObject({ requests: 1, unpriced_requests: 1, input_cost_usd: '0', cost_usd: '0' });
  });

  it('sums costs exactly, past what a double holds', () => {
    // 0.1 + 0.2 in 10^-22 units, and a sub-cent cost 5,000 times: no float anywhere.
    const tenth = 10n ** 21n;
    const tiny = 10822214322n; // 0.00000000000010822214322 USD
    const events = [row({ costs: costs(tenth, 2n * tenth, 0n, 0n) }), ...Array.from({ length: 5000 }, () => row({ costs: costs(0n, 0n, tiny, 0n) }))];
    const [r] = hourlyRollups(events).map(readable);
    expect(r).toMatchObject({ requests: 5001, input_cost_usd: '0.1', output_cost_usd: '0.2', cache_read_cost_usd: '0.000000005411107161', cost_usd: '0.300000005411107161' });
  });

  it('nothing in, nothing out', () => {
    expect(hourlyRollups([])).toEqual([]);
  });
});
