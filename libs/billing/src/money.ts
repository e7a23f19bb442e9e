import { Decimal as DecimalJs } from 'decimal.js';
import { ValidationError } from './errors';

/**
 * The project's one decimal type. A dedicated clone, so nobody's `Decimal.set(...)` elsewhere
 * (or Prisma's own decimal.js copy, precision 20) changes how money is computed here.
 *
 * - precision 60 significant digits: a cost is tokens (< 1e9, 9 digits) x a rate (DB column
 *   DECIMAL(20,10), 20 digits) / 1e6, and sums of those over an invoice; all of that is exact
 *   well inside 60 digits, so nothing is rounded before the invoice line.
 * - toExpNeg/toExpPos pushed out so `toString()` never switches to exponent notation:
 *   a cost of 0.0000005714 USD is written to the DB and to logs as "0.0000005714", not "5.714e-7".
 *
 * decimal.js arithmetic uses the constructor of the LEFT operand. Values coming from another
 * decimal.js copy (e.g. a Prisma Decimal) must be re-wrapped with `usd()` or put on the right.
 */
export const Decimal = DecimalJs.clone({
  precision: 60,
  rounding: DecimalJs.ROUND_HALF_UP,
  toExpNeg: -9e15,
  toExpPos: 9e15,
});
export type Decimal = DecimalJs;

export const ZERO: Decimal = new Decimal(0);

/** Rates are quoted in USD per million tokens. */
export const TOKENS_PER_MTOK = 1_000_000;

// Plain decimal notation with an optional exponent. No hex/octal/binary (decimal.js would accept
// "0x10"), no whitespace, no "Infinity"/"NaN", no bare "." forms.
const DECIMAL_STRING = /^-?\d+(\.\d+)?([eE][+-]?\d{1,4})?$/;

/**
 * A USD amount (or a USD rate) as a project Decimal. Throws ValidationError for malformed or
 * non-finite input: amounts come from config, seeds and the DB, so a bad one is a bug, not user input.
 */
export function usd(x: string | Decimal): Decimal {
  return decimalOf(x, 'amountUsd');
}

/**
 * A percentage (a discount's 12.5, an alert threshold's 80) as a project Decimal: parsed like
 * `usd()`, under its own name so that a percentage is never read as money.
 */
export function percentage(x: string | Decimal): Decimal {
  return decimalOf(x, 'percent');
}

function decimalOf(x: string | Decimal, field: string): Decimal {
  if (typeof x === 'string') {
    if (!DECIMAL_STRING.test(x)) {
      throw new ValidationError(field, `"${x.slice(0, 64)}" is not a decimal number`);
    }
    return new Decimal(x);
  }
  if (!DecimalJs.isDecimal(x) || !x.isFinite()) {
    throw new ValidationError(field, `${String(x)} is not a finite decimal`);
  }
  // Re-wrap so later arithmetic runs with this module's precision, whatever clone x came from.
  return x.constructor === Decimal ? x : new Decimal(x);
}

/**
 * THE rounding rule, the only one in the system:
 *
 *   round half away from zero to whole cents (decimal.js ROUND_HALF_UP),
 *   applied once per invoice line, to that line's exact total.
 *
 * It is NOT applied at ingest: per-event costs are stored exact (tokens x rate / 1e6, less any
 * discount, up to 22 decimal places; see cost-units.ts), and rollups sum exact values. Rounding each event to cents first would
 * turn a million $0.004 requests into $0 instead of $4,000.
 *
 * Examples: 0.005 -> 0.01, 0.0049999 -> 0.00, 1.115 -> 1.12, -0.005 -> -0.01.
 */
export function roundToCents(amountUsd: Decimal): Decimal {
  return new Decimal(amountUsd).toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}

/** Integer cents (Stripe's minor unit for USD), after `roundToCents`. */
export function toMinorUnits(amountUsd: Decimal): bigint {
  // After rounding to 2 places, x100 is an integer; toString never uses exponent notation
  // for this clone, so BigInt() parses it exactly.
  return BigInt(roundToCents(amountUsd).times(100).toString());
}

/** Integer cents as a dollar string with exactly two decimals: 123456n -> "1234.56", -5n -> "-0.05". */
export function minorUnitsToUsdString(amountMinor: bigint | string): string {
  return new Decimal(String(amountMinor)).dividedBy(100).toFixed(2);
}
