import { ValidationError } from './errors';
import { Decimal, TOKENS_PER_MTOK } from './money';
import { ratesFor, type DiscountOverride, type OverrideBook, type PriceOverride } from './overrides';
import type { PriceBook, PriceRates, PriceVersion } from './pricing';
import type { TokenCounts } from './usage-shapes';

/**
 * Exact per-event costs for the ingest hot path, as integers of 10^-22 USD.
 *
 * Why: pricing a million events a minute with decimal.js objects (multiply, then print, then
 * sum into rollups) was a fifth of the ingestor's CPU. The same exact arithmetic on bigint is a
 * few times cheaper. Why 10^-22: every rate the schema can hold prices exactly at it: a rate per
 * million tokens has at most 10 decimals (DECIMAL(20,10)), so per token at most 16, and a
 * discount percent has at most 4 (DECIMAL(7,4)), so (1 - percent/100) has at most 6: 16 + 6 = 22.
 * A rate that does not fit is refused (ValidationError), never rounded.
 *
 * These are the same numbers priceEvent computes with Decimal (a property test holds them
 * equal); Decimal remains the type for everything else (invoices, reprice, the API).
 */
export const COST_SCALE = 22;

/** An exact USD amount in units of 10^-22 USD. */
export type CostUnits = bigint;

export interface TokenCostUnits {
  input: CostUnits;
  output: CostUnits;
  cacheRead: CostUnits;
  cacheWrite: CostUnits;
  /** input + output + cacheRead + cacheWrite. */
  total: CostUnits;
}

export interface EventPricingUnits {
  /** The list price version in force (as in EventPricing). */
  priceVersion: PriceVersion;
  override: PriceOverride | undefined;
  costs: TokenCostUnits;
}

const UNITS_PER_USD = new Decimal(10).pow(COST_SCALE);

/** `amount` in 10^-22 USD; refuses an amount with more than 22 decimal places. */
export function toCostUnits(amount: Decimal, what = 'amountUsd'): CostUnits {
  const scaled = new Decimal(amount).times(UNITS_PER_USD);
  if (!scaled.isInteger()) {
    throw new ValidationError(what, `${amount.toString()} has more than ${COST_SCALE} decimal places`);
  }
  return BigInt(scaled.toFixed(0));
}

/** Exact decimal text of `units` (trailing zeros trimmed), e.g. 5714000000000000n -> "0.0000005714". */
export function costUnitsToString(units: CostUnits): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString();
  let text: string;
  if (digits.length > COST_SCALE) {
    const whole = digits.slice(0, digits.length - COST_SCALE);
    const fraction = trimZeros(digits.slice(digits.length - COST_SCALE));
    text = fraction === '' ? whole : `${whole}.${fraction}`;
  } else {
    const fraction = trimZeros(digits.padStart(COST_SCALE, '0'));
    text = fraction === '' ? '0' : `0.${fraction}`;
  }
  return negative && text !== '0' ? `-${text}` : text;
}

function trimZeros(fraction: string): string {
  let end = fraction.length;
  while (end > 0 && fraction.charCodeAt(end - 1) === 48) end--;
  return fraction.slice(0, end);
}

export function costUnitsToDecimal(units: CostUnits): Decimal {
  return new Decimal(costUnitsToString(units));
}

interface UnitRates {
  input: bigint;
  output: bigint;
  cacheRead: bigint;
  cacheWrite: bigint;
}

// Per-token rates in cost units, per rates object and discount override: computed once (with
// Decimal), then every event is four bigint multiplications. Keyed weakly, like priceTokens's
// cache, so a reloaded price book lets the old entries go.
const UNIT_RATES = new WeakMap<PriceRates, WeakMap<object, UnitRates>>();
const NO_DISCOUNT = {};

function unitRates(rates: PriceRates, discount: DiscountOverride | null): UnitRates {
  let byDiscount = UNIT_RATES.get(rates);
  if (byDiscount === undefined) {
    byDiscount = new WeakMap();
    UNIT_RATES.set(rates, byDiscount);
  }
  let cached = byDiscount.get(discount ?? NO_DISCOUNT);
  if (cached === undefined) {
    const factor = discount === null ? new Decimal(1) : new Decimal(1).minus(new Decimal(discount.discountPercent).dividedBy(100));
    const perToken = (perMTok: Decimal, what: string) =>
      toCostUnits(new Decimal(perMTok).dividedBy(TOKENS_PER_MTOK).times(factor), what);
    const input = perToken(rates.inputPerMTok, 'inputPerMTok');
    cached = {
      input,
      output: perToken(rates.outputPerMTok, 'outputPerMTok'),
      cacheRead: perToken(rates.cacheReadPerMTok, 'cacheReadPerMTok'),
      // No cache-write price: cache writes are charged at the input rate (as priceTokens does).
      cacheWrite: rates.cacheWritePerMTok === null ? input : perToken(rates.cacheWritePerMTok, 'cacheWritePerMTok'),
    };
    byDiscount.set(discount ?? NO_DISCOUNT, cached);
  }
  return cached;
}

function times(tokens: number, rate: bigint, field: string): bigint {
  if (!Number.isSafeInteger(tokens) || tokens < 0) {
    throw new ValidationError(field, `must be a non-negative integer token count (got ${tokens})`);
  }
  return tokens === 0 || rate === 0n ? 0n : BigInt(tokens) * rate;
}

/**
 * priceEvent (overrides.ts), in cost units: the same version and override choice, the same
 * exact costs. undefined when no list version is in force (the event is unpriced).
 */
export function priceEventUnits(
  book: PriceBook,
  overrides: OverrideBook,
  event: { accountId: string; model: string; occurredAt: Date; tokens: TokenCounts },
): EventPricingUnits | undefined {
  const chosen = ratesFor(book, overrides, event);
  if (chosen === undefined) return undefined;
  const rates = unitRates(chosen.rates, chosen.discount);
  const { tokens } = event;
  const input = times(tokens.inputTokens, rates.input, 'inputTokens');
  const output = times(tokens.outputTokens, rates.output, 'outputTokens');
  const cacheRead = times(tokens.cacheReadTokens, rates.cacheRead, 'cacheReadTokens');
  const cacheWrite = times(tokens.cacheWriteTokens, rates.cacheWrite, 'cacheWriteTokens');
  const costs = { input, output, cacheRead, cacheWrite, total: input + output + cacheRead + cacheWrite };
  return { priceVersion: chosen.priceVersion, override: chosen.override, costs };
}
