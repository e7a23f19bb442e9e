import { z, type ZodTypeAny } from 'zod';

/**
 * Field schemas of what the API ANSWERS (the request side is in validation.ts). Each response
 * body has one zod schema, next to the JSON builder that produces it; the builder's return type is
 * `z.input` of that schema, so TypeScript refuses a builder and a documented schema that disagree,
 * and `ApiAnswer(schema)` puts the same schema in /openapi.json.
 */

/**
 * `true` only when two types are the same: for a builder that lives in a lib (the audit log
 * records its shape too) and the schema documenting it here, `const check: Same<Built, z.input<typeof S>> = true`.
 */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** As Date.toISOString() writes it: RFC 3339, UTC, milliseconds. */
export const dateTime = z.string().datetime().describe('RFC 3339 date-time in UTC, e.g. "2026-11-15T10:30:00.000Z"');

/** Exact, never a JSON number: costs are sums of exact per-event costs, up to 22 decimals. */
export const usdAmount = z
  .string()
  .regex(/^\d+(\.\d+)?$/)
  .describe('USD, an exact decimal STRING (not a JSON number, no trailing zeros), e.g. "0.00175997"');

/** Invoice amounts: a discount line is negative. */
export const signedUsdAmount = z
  .string()
  .regex(/^-?\d+(\.\d+)?$/)
  .describe('USD, an exact decimal STRING (not a JSON number); negative on discount lines');

export const ratePerMTok = z
  .string()
  .regex(/^\d+(\.\d+)?$/)
  .describe('USD per million tokens, a decimal STRING (not a JSON number), e.g. "2.5"');

/** A price version's four list rates (the price book, GET /v1/prices, a receipt's price_version). */
export const LIST_RATES = {
  input_per_mtok: ratePerMTok,
  output_per_mtok: ratePerMTok,
  cache_read_per_mtok: ratePerMTok,
  cache_write_per_mtok: ratePerMTok.nullable().describe('null: cache writes are charged at the input rate'),
};

/** An override's rates (set on rate cards, null on discounts) and validity (an account's overrides, a receipt's price_override). */
export const OVERRIDE_TERMS = {
  input_per_mtok: ratePerMTok.nullable().describe('Rate cards only'),
  output_per_mtok: ratePerMTok.nullable().describe('Rate cards only'),
  cache_read_per_mtok: ratePerMTok.nullable().describe('Rate cards only'),
  cache_write_per_mtok: ratePerMTok.nullable().describe('Rate cards only; null: the input rate'),
  effective_from: dateTime,
  effective_to: dateTime.nullable().describe('Exclusive; null: open-ended'),
};

/** Token and request counts: JSON integers (usage-json.ts `count()` refuses to answer past 2^53). */
export const integerCount = z.number().int().nonnegative();

/** A count the database sums as bigint and the answer carries as a string of digits. */
export const countString = z.string().regex(/^\d+$/).describe('A count, as a string of decimal digits');

/** Integer cents (minor units) carried as a string of digits. */
export const minorString = z.string().regex(/^-?\d+$/).describe('Integer cents (minor units), as a string of decimal digits');

/** The cursor of a paginated answer. */
export const nextCursor = z.string().nullable().describe('Pass as `cursor` to get the next page; null on the last page');

/** A cursor-paginated list. */
export function pageOf<T extends ZodTypeAny>(item: T) {
  return z.object({ data: z.array(item), next_cursor: nextCursor }).strict();
}

/** A complete (not paginated) list. */
export function listOf<T extends ZodTypeAny>(item: T) {
  return z.object({ data: z.array(item) }).strict();
}
