import { discount, rateCard } from './__fixtures__/overrides';
import { seedPriceBook, tokens } from './__fixtures__/price-book';
import { costUnitsToString, priceEventUnits } from './cost-units';
import { OverrideBook } from './overrides';

const book = seedPriceBook();
const usage = tokens({ inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000, cacheWriteTokens: 1_000_000 });
const at = new Date('2026-06-01T00:00:00Z');

describe('a rate card replaces the list rates for its account and model', () => {
  const overrides = new OverrideBook([
    rateCard('1', 'acct_big', 'gpt-4o', '2026-01-01T00:00:00Z', { input: '2', output: '8', cacheRead: '1' }),
    // A discount for all models exists too: a rate card wins, they never stack.
    discount('2', 'acct_big', null, '50', '2026-01-01T00:00:00Z'),
  ]);

  it('prices at the agreed rates and still records the list version in force', () => {
    const priced = priceEventUnits(book, overrides, { accountId: 'acct_big', model: 'gpt-4o', occurredAt: at, tokens: usage });
    expect(priced?.priceVersion.modelId).toBe('gpt-4o');
    expect(priced?.priceVersion.inputPerMTok.toString()).toBe('2.5');
    expect(priced?.override?.id).toBe('1');
    // No cache-write rate on the card: cache writes cost the card's input rate, like list prices.
    const costs = priced!.costs;
    expect([costs.input, costs.output, costs.cacheRead, costs.cacheWrite, costs.total].map(costUnitsToString)).toEqual(['2', '8', '1', '2', '13']);
  });

  it('other accounts pay list price', () => {
    const priced = priceEventUnits(book, overrides, { accountId: 'acct_other', model: 'gpt-4o', occurredAt: at, tokens: usage });
    expect(priced?.override).toBeUndefined();
    expect(costUnitsToString(priced!.costs.total)).toBe('16.25'); // 2.5 + 10 + 1.25 + 2.5 (cache write at input)
  });

  it('is unpriced when no list version is in force, even with a rate card', () => {
    const cards = new OverrideBook([rateCard('1', 'acct_big', 'brand-new-model', '2026-01-01T00:00:00Z', { input: '1', output: '1', cacheRead: '1' })]);
    expect(priceEventUnits(book, cards, { accountId: 'acct_big', model: 'brand-new-model', occurredAt: at, tokens: usage })).toBeUndefined();
  });
});
