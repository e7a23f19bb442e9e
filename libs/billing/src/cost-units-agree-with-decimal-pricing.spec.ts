import { discount, rateCard } from './__fixtures__/overrides';
import { seedPriceBook, tokens, version } from './__fixtures__/price-book';
import { costUnitsToDecimal, costUnitsToString, parseCostUnits, priceEventUnits, toCostUnits } from './cost-units';
import { Decimal, TOKENS_PER_MTOK } from './money';
import { OverrideBook, ratesFor } from './overrides';
import { PriceBook, type PriceRates } from './pricing';
import type { TokenCounts } from './usage-shapes';

/**
 * The reference oracle: the costs written out the plain way, in Decimal (precision 60, far more
 * than any product here needs), bucket by bucket, with the discount applied to each per-type
 * cost. Production never runs this; it prices with bigint cost units only. Which rates apply
 * is ratesFor's choice in both.
 */
function decimalCosts(tokens: TokenCounts, rates: PriceRates, discountPercent: Decimal | null) {
  const factor = discountPercent === null ? new Decimal(1) : new Decimal(1).minus(new Decimal(discountPercent).dividedBy(100));
  const cost = (n: number, perMTok: Decimal) => new Decimal(perMTok).dividedBy(TOKENS_PER_MTOK).times(n).times(factor);
  const input = cost(tokens.inputTokens, rates.inputPerMTok);
  const output = cost(tokens.outputTokens, rates.outputPerMTok);
  const cacheRead = cost(tokens.cacheReadTokens, rates.cacheReadPerMTok);
  const cacheWrite = cost(tokens.cacheWriteTokens, rates.cacheWritePerMTok ?? rates.inputPerMTok);
  return { input, output, cacheRead, cacheWrite, total: input.plus(output).plus(cacheRead).plus(cacheWrite) };
}

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
      const chosen = ratesFor(book, overrides, event)!;
      const exact = decimalCosts(event.tokens, chosen.rates, chosen.discount?.discountPercent ?? null);
      const units = priceEventUnits(book, overrides, event)!;
      expect(units.priceVersion).toBe(chosen.priceVersion);
      expect(units.override).toBe(chosen.override);
      for (const type of ['input', 'output', 'cacheRead', 'cacheWrite', 'total'] as const) {
        // Compared as text: what goes to Postgres must be the same number, digit for digit
        // (toFixed: plain notation, as Postgres prints a numeric).
        const text = costUnitsToString(units.costs[type]);
        if (text !== exact[type].toFixed()) throw new Error(`case ${i} ${type}: ${text} != ${exact[type].toFixed()}`);
        // And what Postgres hands back parses to the same units.
        if (parseCostUnits(exact[type].toFixed()) !== units.costs[type]) throw new Error(`case ${i} ${type}: parse`);
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
    expect(parseCostUnits(text)).toBe(units);
  });

  it.each([
    ['0.0017599700000000', 17_599_700_000_000_000_000n], // trailing zeros of a scaled numeric
    ['12', 12n * 10n ** 22n],
    ['-0.50', -(5n * 10n ** 21n)],
    ['0.0000000000000000000001000', 1n],
  ])('reads %s as Postgres prints it', (text, units) => {
    expect(parseCostUnits(text)).toBe(units);
  });

  it.each(['0.00000000000000000000001', '1e-7', '', '.5', '1.', 'NaN', ' 1'])('refuses %p instead of rounding or guessing', (text) => {
    expect(() => parseCostUnits(text, 'cost_usd')).toThrow(/^cost_usd: /);
  });

  it('refuses an amount finer than 10^-22 USD instead of rounding it', () => {
    expect(() => toCostUnits(new Decimal('0.00000000000000000000001'))).toThrow(/more than 22 decimal places/);
    const book = new PriceBook([version('1', 'm', '2026-01-01T00:00:00Z', { input: '0.00000000000000001', output: '1', cacheRead: '1' })]);
    const event = { accountId: 'a', model: 'm', occurredAt: new Date('2026-06-01T00:00:00Z'), tokens: tokens({ inputTokens: 1 }) };
    expect(() => priceEventUnits(book, new OverrideBook([]), event)).toThrow(/inputPerMTok/);
  });
});
