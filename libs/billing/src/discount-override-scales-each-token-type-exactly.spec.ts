import { discount } from './__fixtures__/overrides';
import { seedPriceBook, tokens } from './__fixtures__/price-book';
import { OverrideBook, priceEvent } from './overrides';

const book = seedPriceBook();
const at = new Date('2026-06-01T00:00:00Z');

describe('a percentage discount scales every per-type cost exactly', () => {
  it('12.5% off deepseek-r1, no rounding anywhere', () => {
    const overrides = new OverrideBook([discount('1', 'acct_a', 'deepseek-r1', '12.5', '2026-01-01T00:00:00Z')]);
    const priced = priceEvent(book, overrides, {
      accountId: 'acct_a',
      model: 'deepseek-r1',
      occurredAt: at,
      tokens: tokens({ inputTokens: 1000, outputTokens: 500, cacheReadTokens: 200 }),
    });
    // List: 0.0005714 + 0.00114285 + 0.00004572 = 0.00175997; x 0.875 each.
    expect(priced?.costs.inputCostUsd.toString()).toBe('0.000499975');
    expect(priced?.costs.outputCostUsd.toString()).toBe('0.00099999375');
    expect(priced?.costs.cacheReadCostUsd.toString()).toBe('0.000040005');
    expect(priced?.costs.costUsd.toString()).toBe('0.00153997375');
    expect(priced?.priceVersion).toMatchObject({ id: '1', modelId: 'deepseek-r1' }); // the list version the discount scales
    expect(priced?.override?.id).toBe('1');
  });

  it('100% off makes usage free but still priced', () => {
    const overrides = new OverrideBook([discount('1', 'acct_a', null, '100', '2026-01-01T00:00:00Z')]);
    const priced = priceEvent(book, overrides, { accountId: 'acct_a', model: 'gpt-4o', occurredAt: at, tokens: tokens({ inputTokens: 10 }) });
    expect(priced?.costs.costUsd.isZero()).toBe(true);
  });

  it.each(['0', '-5', '100.0001'])('refuses a discount of %s%%', (percent) => {
    expect(() => new OverrideBook([discount('1', 'acct_a', null, percent, '2026-01-01T00:00:00Z')])).toThrow(/discountPercent/);
  });
});
