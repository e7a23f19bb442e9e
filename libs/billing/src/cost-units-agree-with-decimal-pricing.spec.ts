import { discount, rateCard } from './__fixtures__/overrides';
import { seedPriceBook, tokens, version } from './__fixtures__/price-book';
import { costUnitsToDecimal, costUnitsToString, priceEventUnits, toCostUnits } from './cost-units';
import { Decimal } from './money';
import { OverrideBook, priceEvent } from './overrides';
import { PriceBook } from './pricing';

/** Deterministic PRNG (mulberry32): the cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('bigint cost units price exactly like Decimal pricing', () => {
  const random = prng(20261129);
  const int = (max: number) => Math.floor(random() * max);
  // Any rate the schema can hold: DECIMAL(20,10) per million tokens.
  const rate = () => `${int(10) === 0 ? 0 : int(100_000)}.${String(int(10_000_000_000)).padStart(10, '0')}`;
  // Any discount the schema can hold: DECIMAL(7,4) in (0, 100].
  const percent = () => `${1 + int(99)}.${String(int(10_000)).padStart(4, '0')}`;
  const count = () => [0, 1, 999_999_999, int(1_000_000_000), int(10_000)][int(5)];

  it('agrees on 3,000 random events over list prices, rate cards and discounts', () => {
    for (let i = 0; i < 3000; i++) {
      const cacheWrite = int(2) === 0 ? null : rate();
      const book = new PriceBook([version('1', 'm', '2026-01-01T00:00:00Z', { input: rate(), output: rate(), cacheRead: rate(), cacheWrite })]);
      const kind = int(3);
      const overrides = new OverrideBook(
        kind === 0
          ? []
          : kind === 1
            ? [rateCard('9', 'acct', 'm', '2026-01-01T00:00:00Z', { input: rate(), output: rate(), cacheRead: rate(), cacheWrite: int(2) ? rate() : null })]
            : [discount('9', 'acct', null, percent(), '2026-01-01T00:00:00Z')],
      );
      const event = {
        accountId: 'acct',
        model: 'm',
        occurredAt: new Date('2026-06-01T00:00:00Z'),
        tokens: tokens({ inputTokens: count(), outputTokens: count(), cacheReadTokens: count(), cacheWriteTokens: count() }),
      };
      const exact = priceEvent(book, overrides, event)!;
      const units = priceEventUnits(book, overrides, event)!;
      expect(units.priceVersion).toBe(exact.priceVersion);
      expect(units.override).toBe(exact.override);
      const pairs: [bigint, Decimal][] = [
        [units.costs.input, exact.costs.inputCostUsd],
        [units.costs.output, exact.costs.outputCostUsd],
        [units.costs.cacheRead, exact.costs.cacheReadCostUsd],
        [units.costs.cacheWrite, exact.costs.cacheWriteCostUsd],
        [units.costs.total, exact.costs.costUsd],
      ];
      for (const [u, d] of pairs) {
        // Compared as text too: what goes to Postgres must be the same number, digit for digit.
        if (costUnitsToString(u) !== d.toString()) throw new Error(`case ${i}: ${costUnitsToString(u)} != ${d.toString()}`);
      }
    }
  });

  it('prices the seed deepseek-r1 rates like the Decimal path', () => {
    const event = { accountId: 'a', model: 'deepseek-r1', occurredAt: new Date('2026-06-01T00:00:00Z'), tokens: tokens({ inputTokens: 1000, outputTokens: 500, cacheReadTokens: 200 }) };
    const units = priceEventUnits(seedPriceBook(), new OverrideBook([]), event)!;
    expect(costUnitsToString(units.costs.total)).toBe('0.00175997');
    expect(costUnitsToString(units.costs.input)).toBe('0.0005714');
  });

  it('is unpriced exactly when the Decimal path is', () => {
    const event = { accountId: 'a', model: 'no-such-model', occurredAt: new Date(), tokens: tokens({ inputTokens: 1 }) };
    expect(priceEventUnits(seedPriceBook(), new OverrideBook([]), event)).toBeUndefined();
  });

  it.each([
    [0n, '0'],
    [1n, '0.0000000000000000000001'],
    [5_714_000_000_000_000n, '0.0000005714'],
    [10n ** 22n, '1'],
    [123n * 10n ** 22n + 5n * 10n ** 21n, '123.5'],
    [-(10n ** 21n), '-0.1'],
  ])('writes %p as %s', (units, text) => {
    expect(costUnitsToString(units)).toBe(text);
    expect(costUnitsToDecimal(units).equals(new Decimal(text))).toBe(true);
  });

  it('refuses an amount finer than 10^-22 USD instead of rounding it', () => {
    expect(() => toCostUnits(new Decimal('0.00000000000000000000001'))).toThrow(/more than 22 decimal places/);
    const book = new PriceBook([version('1', 'm', '2026-01-01T00:00:00Z', { input: '0.00000000000000001', output: '1', cacheRead: '1' })]);
    const event = { accountId: 'a', model: 'm', occurredAt: new Date('2026-06-01T00:00:00Z'), tokens: tokens({ inputTokens: 1 }) };
    expect(() => priceEventUnits(book, new OverrideBook([]), event)).toThrow(/inputPerMTok/);
  });
});
