import { seedPriceBook, tokens, version } from './__fixtures__/price-book';
import { Decimal as ForeignDecimal } from 'decimal.js';
import { costUnitsToString, priceTokenUnits, type TokenCostUnits } from './cost-units';
import { ValidationError } from './errors';

const book = seedPriceBook();
const at = new Date('2025-06-01T00:00:00Z');

const asText = (costs: TokenCostUnits) => ({
  input: costUnitsToString(costs.input),
  output: costUnitsToString(costs.output),
  cacheRead: costUnitsToString(costs.cacheRead),
  cacheWrite: costUnitsToString(costs.cacheWrite),
  total: costUnitsToString(costs.total),
});

describe('cache writes cost the cache-write rate, or the input rate when there is none', () => {
  it('no cache-write rate (null): cache writes are charged at the input rate', () => {
    const gpt4o = book.versionAt('gpt-4o', at)!;
    expect(gpt4o.cacheWritePerMTok).toBeNull();
    const costs = priceTokenUnits(tokens({ cacheWriteTokens: 2_000_000 }), gpt4o);
    expect(asText(costs)).toMatchObject({ cacheWrite: '5', total: '5' });
  });

  it('a cache-write rate is used when set (claude-sonnet-4: 3.75 per 1M)', () => {
    const sonnet = book.versionAt('claude-sonnet-4', at)!;
    const costs = priceTokenUnits(tokens({ inputTokens: 12, outputTokens: 450, cacheReadTokens: 9000, cacheWriteTokens: 1500 }), sonnet);
    // 12 x 3 + 450 x 15 + 9000 x 0.30 + 1500 x 3.75 = 36 + 6750 + 2700 + 5625 = 15111 micro-USD
    expect(asText(costs)).toEqual({ input: '0.000036', output: '0.00675', cacheRead: '0.0027', cacheWrite: '0.005625', total: '0.015111' });
  });

  it('a zero cache-write rate is a real rate, not a fallback', () => {
    const free = version('1', 'm', '2025-01-01T00:00:00Z', { input: '1', output: '1', cacheRead: '1', cacheWrite: '0' });
    expect(costUnitsToString(priceTokenUnits(tokens({ cacheWriteTokens: 1_000_000 }), free).total)).toBe('0');
  });

  it('products keep full precision even when a rate comes from a precision-20 decimal.js copy', () => {
    // Prisma ships its own decimal.js (precision 20). The largest rate the schema holds
    // (DECIMAL(20,10)) times 999,999,999 tokens has 30 significant digits: a precision-20 left
    // operand anywhere on the way would round it.
    const rate = new ForeignDecimal('9999999999.9999999999');
    const costs = priceTokenUnits(
      tokens({ inputTokens: 999_999_999 }),
      { inputPerMTok: rate, outputPerMTok: rate, cacheReadPerMTok: rate, cacheWritePerMTok: null },
    );
    expect(costUnitsToString(costs.input)).toBe('9999999989999.9999999000000001');
  });

  it('token counts that are not non-negative integers are a programming error', () => {
    const gpt4o = book.versionAt('gpt-4o', at)!;
    expect(() => priceTokenUnits(tokens({ outputTokens: -1 }), gpt4o)).toThrow(ValidationError);
    expect(() => priceTokenUnits(tokens({ inputTokens: 0.5 }), gpt4o)).toThrow('inputTokens: must be a non-negative integer token count (got 0.5)');
  });
});
