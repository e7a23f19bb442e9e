import { ValidationError } from './errors';
import { Decimal, TOKENS_PER_MTOK } from './money';
import { ratesFor, type DiscountOverride, type OverrideBook, type PriceOverride } from './overrides';
import type { PriceBook, PriceRates, PriceVersion } from './pricing';
import type { TokenCounts } from './usage-shapes';

/**
 * Exact per-event costs, as integers of 10^-22 USD: the one way an event is priced, at ingest
 * and on reprice alike.
 *
 * Why: pricing a million events a minute with decimal.js objects (multiply, then print, then
 * sum into rollups) was a fifth of the ingestor's CPU. The same exact arithmetic on bigint is a
 * few times cheaper. Why 10^-22: every rate the schema can hold prices exactly at it: a rate per
 * million tokens has at most 10 decimals (DECIMAL(20,10)), so per token at most 16, and a
 * discount percent has at most 4 (DECIMAL(7,4)), so (1 - percent/100) has at most 6: 16 + 6 = 22.
 * A rate that does not fit is refused (ValidationError), never rounded. usage_events and
 * usage_hourly store these amounts exactly (unconstrained numeric), so a stored cost parses back
 * to the same units (parseCostUnits) and two prices compare exactly, as bigints.
 *
 * A property test (cost-units-agree-with-decimal-pricing.spec.ts) holds these numbers equal to
 * tokens x rate / 1e6 x (1 - percent/100) computed with Decimal. Decimal remains the type for
 * sums and amounts everywhere else (invoices, the API).
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
  /** Always the LIST price version in force, even when an override changed the rates. */
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

const DECIMAL_TEXT = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Units of a decimal text as Postgres prints a numeric ("0.00000010822214322", never exponent
 * notation). Exact: refuses text with more than 22 significant decimal places instead of rounding.
 */
export function parseCostUnits(text: string, what = 'amountUsd'): CostUnits {
  const m = DECIMAL_TEXT.exec(text);
  if (m === null) throw new ValidationError(what, `${JSON.stringify(text)} is not a plain decimal number`);
  const fraction = trimZeros(m[3] ?? '');
  if (fraction.length > COST_SCALE) throw new ValidationError(what, `${text} has more than ${COST_SCALE} decimal places`);
  const units = BigInt(m[2] + fraction.padEnd(COST_SCALE, '0'));
  return m[1] === '-' ? -units : units;
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
  // The rates this was derived from: a rates object that has since been given another rate must
  // not reuse it (Decimals are immutable, so identity is enough).
  sourceInput: Decimal;
  sourceOutput: Decimal;
  sourceCacheRead: Decimal;
  sourceCacheWrite: Decimal | null;
  input: bigint;
  output: bigint;
  cacheRead: bigint;
  cacheWrite: bigint;
}

// Per-token rates in cost units, per rates object and discount override: computed once (with
// Decimal), then every event is four bigint multiplications. Keyed weakly, so a reloaded price
// book lets the old entries go.
const UNIT_RATES = new WeakMap<PriceRates, WeakMap<object, UnitRates>>();
const NO_DISCOUNT = {};

function unitRates(rates: PriceRates, discount: DiscountOverride | null): UnitRates {
  let byDiscount = UNIT_RATES.get(rates);
  if (byDiscount === undefined) {
    byDiscount = new WeakMap();
    UNIT_RATES.set(rates, byDiscount);
  }
  let cached = byDiscount.get(discount ?? NO_DISCOUNT);
  if (
    cached === undefined ||
    cached.sourceInput !== rates.inputPerMTok ||
    cached.sourceOutput !== rates.outputPerMTok ||
    cached.sourceCacheRead !== rates.cacheReadPerMTok ||
    cached.sourceCacheWrite !== rates.cacheWritePerMTok
  ) {
    const factor = discount === null ? new Decimal(1) : new Decimal(1).minus(new Decimal(discount.discountPercent).dividedBy(100));
    // Our Decimal on the left: decimal.js computes with the left operand's precision, so a rate
    // that came from another decimal.js copy (Prisma's, precision 20) cannot round anything.
    const perToken = (perMTok: Decimal, what: string) =>
      toCostUnits(new Decimal(perMTok).dividedBy(TOKENS_PER_MTOK).times(factor), what);
    const input = perToken(rates.inputPerMTok, 'inputPerMTok');
    cached = {
      sourceInput: rates.inputPerMTok,
      sourceOutput: rates.outputPerMTok,
      sourceCacheRead: rates.cacheReadPerMTok,
      sourceCacheWrite: rates.cacheWritePerMTok,
      input,
      output: perToken(rates.outputPerMTok, 'outputPerMTok'),
      cacheRead: perToken(rates.cacheReadPerMTok, 'cacheReadPerMTok'),
      // No cache-write price: cache writes are charged at the input rate.
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
 * Cost of one event's tokens at `rates` (less `discount`, if any): tokens x rate / 1e6 per
 * bucket, exact. The four buckets are disjoint (see TokenCounts), so each token is charged
 * exactly once; reasoning tokens are part of output and are not charged again. A discount scales
 * each per-type cost (not only the total), so receipts and invoice lines per type still add up.
 */
export function priceTokenUnits(tokens: TokenCounts, rates: PriceRates, discount: DiscountOverride | null = null): TokenCostUnits {
  const unit = unitRates(rates, discount);
  const input = times(tokens.inputTokens, unit.input, 'inputTokens');
  const output = times(tokens.outputTokens, unit.output, 'outputTokens');
  const cacheRead = times(tokens.cacheReadTokens, unit.cacheRead, 'cacheReadTokens');
  const cacheWrite = times(tokens.cacheWriteTokens, unit.cacheWrite, 'cacheWriteTokens');
  return { input, output, cacheRead, cacheWrite, total: input + output + cacheRead + cacheWrite };
}

/**
 * Prices one event for an account, exactly: the list version in force and the account's
 * override, chosen by ratesFor (overrides.ts). undefined when no list version is in force (the
 * event is unpriced).
 */
export function priceEventUnits(
  book: PriceBook,
  overrides: OverrideBook,
  event: { accountId: string; model: string; occurredAt: Date; tokens: TokenCounts },
): EventPricingUnits | undefined {
  const chosen = ratesFor(book, overrides, event);
  if (chosen === undefined) return undefined;
  return { priceVersion: chosen.priceVersion, override: chosen.override, costs: priceTokenUnits(event.tokens, chosen.rates, chosen.discount) };
}
