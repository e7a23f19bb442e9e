import { z, type ZodType, type ZodTypeDef } from 'zod';
import { parseRfc3339Ms } from '@tokenmeter/billing/rfc3339';
import { ApiError } from './api-error';

/**
 * Request validation for the admin routes: a zod schema per body or query, and one 400
 * `validation_failed` shape whose details name the offending field (`details.field`, the JSON
 * path as the client sent it, e.g. "input_per_mtok") plus every issue found.
 */
export function parseInput<T>(schema: ZodType<T, ZodTypeDef, unknown>, input: unknown, where: 'body' | 'query'): T {
  if (where === 'body' && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw new ApiError(400, 'validation_failed', 'body: must be a JSON object', { field: 'body', issues: [] });
  }
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : where,
    message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  const first = issues[0];
  throw new ApiError(400, 'validation_failed', `${first.field}: ${first.message}`, { field: first.field, issues });
}

// Money and rates travel as JSON strings ("2.50"), never numbers: a JSON number is a binary
// float in most clients, and 0.1 + 0.2 is how invoices go wrong. The DB column is DECIMAL(20,10).
const DECIMAL_RATE = /^\d{1,10}(\.\d{1,10})?$/;

/** A non-negative USD rate per million tokens, as a decimal string with at most 10 decimals. */
export const rateString = z
  .string({ invalid_type_error: 'must be a decimal string such as "2.50" (JSON numbers are refused for money)' })
  .regex(DECIMAL_RATE, 'must be a non-negative decimal string with at most 10 integer digits and 10 decimals, e.g. "2.50"');

/** RFC 3339 with an explicit offset, normalised to a Date. */
export const instant = z
  .string({ invalid_type_error: 'must be an RFC 3339 date-time string such as "2026-11-01T00:00:00Z"' })
  .transform((value, ctx) => {
    const ms = parseRfc3339Ms(value);
    if (ms === null) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be an RFC 3339 date-time such as "2026-11-01T00:00:00Z" (got "${value.slice(0, 64)}")` });
      return z.NEVER;
    }
    return new Date(ms);
  });

/** Ids we mint or accept (accounts, models): printable, no spaces, bounded. */
export const identifier = z
  .string({ invalid_type_error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:\-/]*$/, 'may contain only letters, digits and . _ : - / (starting with a letter or digit)');

export const pageLimit = z.coerce
  .number({ invalid_type_error: 'must be an integer' })
  .int('must be an integer')
  .min(1, 'must be at least 1')
  .max(1000, 'must be at most 1000')
  .default(100);

/** Opaque cursors: base64url of a JSON array of strings. Clients pass back what they were given. */
export function encodeCursor(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

export function cursor(arity: number, valid: (parts: string[]) => boolean = () => true) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      try {
        if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new Error('not base64url');
        const parts: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
        if (Array.isArray(parts) && parts.length === arity && parts.every((p) => typeof p === 'string') && valid(parts)) {
          return parts as string[];
        }
      } catch {
        // fall through
      }
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'is not a cursor returned by this API' });
      return z.NEVER;
    });
}
