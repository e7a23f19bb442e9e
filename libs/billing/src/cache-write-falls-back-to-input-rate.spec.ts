import { seedPriceBook, tokens, version } from './__fixtures__/price-book';
import { Decimal as ForeignDecimal } from 'decimal.js';
import { ValidationError } from './errors';
import { priceTokens } from './pricing';

const book = seedPriceBook();
const at = new Date('2025-06-01T00:00:00Z');

describe('cache writes cost the cache-write rate, or the input rate when there is none', () => {
  it('no cache-write rate (null): cache writes are charged at the input rate', () => {
    const gpt4o = book.versionAt('gpt-4o', at)!;
    expect(gpt4o.cacheWritePerMTok).toBeNull();
    const costs = priceTokens(tokens({ cacheWriteTokens: 2_000_000 }), gpt4o);
    expect(costs.cacheWriteCostUsd.toString()).toBe('5');
    expect(costs.costUsd.toString()).toBe('5');
  });

  it('a cache-write rate is used when set (claude-sonnet-4: 3.75 per 1M)', () => {
    const sonnet = book.versionAt('claude-sonnet-4', at)!;
    const costs = priceTokens(tokens({ inputTokens: 12, outputTokens: 450, cacheReadTokens: 9000, cacheWriteTokens: 1500 }), sonnet);
    // 12 x 3 + 450 x 15 + 9000 x 0.30 + 1500 x 3.75 = 36 + 6750 + 2700 + 5625 = 15111 micro-USD
    expect({
      input: costs.inputCostUsd.toString(),
      output: costs.outputCostUsd.toString(),
      cacheRead: costs.cacheReadCostUsd.toString(),
      cacheWrite: costs.cacheWriteCostUsd.toString(),
      total: costs.costUsd.toString(),
    }).toEqual({ input: '0.000036', output: '0.00675', cacheRead: '0.0027', cacheWrite: '0.005625', total: '0.015111' });
  });

  it('a zero cache-write rate is a real rate, not a fallback', () => {
    const free = version('1', 'm', '2025-01-01T00:00:00Z', { input: '1', output: '1', cacheRead: '1', cacheWrite: '0' });
    expect(priceTokens(tokens({ cacheWriteTokens: 1_000_000 }), free).costUsd.toString()).toBe('0');
  });

  it('products keep full precision even when a rate comes from a precision-20 decimal.js copy', () => {
    // Prisma ships its own decimal.js (precision 20). 999,999,999 x 1.2345678901 has 20 significant
    // digits before the division; a precision-20 left operand would already be rounding here.
    const rate = new ForeignDecimal('1.2345678901234567891');
    const costs = priceTokens(
      tokens({ inputTokens: 999_999_999 }),
      { inputPerMTok: rate, outputPerMTok: rate, cacheReadPerMTok: rate, cacheWritePerMTok: null },
    );
    expect(costs.inputCostUsd.toString()).toBe('1234.5678888888888989765432109');
  });

  it('token counts that are not non-negative integers are a programming error', () => {
    const gpt4o = book.versionAt('gpt-4o', at)!;
    expect(() => priceTokens(tokens({ outputTokens: -1 }), gpt4o)).toThrow(ValidationError);
    expect(() => priceTokens(tokens({ inputTokens: 0.5 }), gpt4o)).toThrow('inputTokens: must be a non-negative integer token count (got 0.5)');
  });
});
