import { discount } from './__fixtures__/overrides';
import { seedPriceBook, tokens, version } from './__fixtures__/price-book';
import { costUnitsToString, priceEventUnits } from './cost-units';
import { OverrideBook } from './overrides';
import { PriceBook } from './pricing';

const book = seedPriceBook();
const at = new Date('2026-06-01T00:00:00Z');

describe('a percentage discount scales every per-type cost exactly', () => {
  it('12.5% off deepseek-r1, no rounding anywhere', () => {
    const overrides = new OverrideBook([discount('1', 'acct_a', 'deepseek-r1', '12.5', '2026-01-01T00:00:00Z')]);
    const priced = priceEventUnits(book, overrides, {
      accountId: 'acct_a',
      model: 'deepseek-r1',
      occurredAt: at,
      tokens: tokens({ inputTokens: 1000, outputTokens: 500, cacheReadTokens: 200 }),
    });
    // List: 0.0005714 + 0.00114285 + 0.00004572 = 0.00175997; x 0.875 each.
    const costs = priced!.costs;
    expect(costUnitsToString(costs.input)).toBe('0.000499975');
    expect(costUnitsToString(costs.output)).toBe('0.00099999375');
    expect(costUnitsToString(costs.cacheRead)).toBe('0.000040005');
    expect(costUnitsToString(costs.cacheWrite)).toBe('0');
    expect(costUnitsToString(costs.total)).toBe('0.00153997375');
    // The list version stays recorded; the override is the one that changed the price.
    expect(priced?.priceVersion).toBe(book.versionAt('deepseek-r1', at));
    expect(priced?.override?.id).toBe('1');
  });

  it('100% off makes usage free but still priced', () => {
    const overrides = new OverrideBook([discount('1', 'acct_a', null, '100', '2026-01-01T00:00:00Z')]);
    const priced = priceEventUnits(book, overrides, { accountId: 'acct_a', model: 'gpt-4o', occurredAt: at, tokens: tokens({ inputTokens: 10 }) });
    expect(priced?.costs.total).toBe(0n);
    expect(priced?.override?.id).toBe('1');
  });

  it('a 4-dp discount on a 7-dp rate keeps every digit (17 decimal places per token)', () => {
    const sevenDp = new PriceBook([version('1', 'm', '2026-01-01T00:00:00Z', { input: '0.1234567', output: '1', cacheRead: '1' })]);
    const overrides = new OverrideBook([discount('1', 'acct_a', null, '12.34', '2026-01-01T00:00:00Z')]);
    const priced = priceEventUnits(sevenDp, overrides, { accountId: 'acct_a', model: 'm', occurredAt: at, tokens: tokens({ inputTokens: 1 }) });
    expect(costUnitsToString(priced!.costs.total)).toBe('0.00000010822214322'); // 0.1234567 / 1e6 x 0.8766
  });

  it.each(['0', '-5', '100.0001'])('refuses a discount of %s%%', (percent) => {
    expect(() => new OverrideBook([discount('1', 'acct_a', null, percent, '2026-01-01T00:00:00Z')])).toThrow(/discountPercent/);
  });
});
