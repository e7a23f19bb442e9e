import { ApiError } from '../common/api-error';

/**
 * Parsing of query parameters shared by the account and admin read routes. Every failure is a
 * 400 `validation_failed` whose details name the field, so a client can point at the culprit.
 */

export const MAX_RANGE_DAYS = 400;
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

// RFC 3339 date-time: a date, a time and an explicit offset (Z or ±hh:mm). Date.parse alone
// would also accept "2026-11-01" or "Nov 1 2026" and read them in an unstated time zone.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export function invalid(field: string, message: string): ApiError {
  return new ApiError(400, 'validation_failed', `${field}: ${message}`, { field });
}

/** A single-valued query parameter (Express gives an array for `?x=1&x=2`). */
export function single(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(field, 'must be given once');
  return value;
}

export function parseInstant(field: string, raw: unknown): Date | undefined {
  const value = single(field, raw);
  if (value === undefined || value === '') return undefined;
  if (!RFC3339.test(value)) throw invalid(field, `must be an RFC 3339 date-time such as 2026-11-01T00:00:00Z (got "${value.slice(0, 64)}")`);
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw invalid(field, `is not a valid date-time (got "${value.slice(0, 64)}")`);
  return at;
}

export interface TimeRange {
  from: Date;
  to: Date;
}

export interface RangeOptions {
  /** Both ends required (dashboards) or both optional (admin filters). */
  required: boolean;
  /** Rollup-backed routes: both ends must be whole UTC hours (see docs/api.md). */
  hourAligned: boolean;
}

/** `from` (inclusive) and `to` (exclusive), to > from, at most MAX_RANGE_DAYS apart. */
export function parseRange(query: Record<string, unknown>, options: { required: true; hourAligned: boolean }): TimeRange;
export function parseRange(query: Record<string, unknown>, options: RangeOptions): Partial<TimeRange>;
export function parseRange(query: Record<string, unknown>, options: RangeOptions): Partial<TimeRange> {
  const from = parseInstant('from', query.from);
  const to = parseInstant('to', query.to);
  if (options.required) {
    if (!from) throw invalid('from', 'is required');
    if (!to) throw invalid('to', 'is required');
  }
  for (const [field, at] of [['from', from], ['to', to]] as const) {
    if (at && options.hourAligned && at.getTime() % HOUR_MS !== 0) {
      throw invalid(field, `must be a whole UTC hour (usage is aggregated per hour), e.g. ${new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS).toISOString()}`);
    }
  }
  if (from && to) {
    if (to.getTime() <= from.getTime()) throw invalid('to', 'must be after from');
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) throw invalid('to', `must be at most ${MAX_RANGE_DAYS} days after from`);
  }
  return { from, to };
}

export function parseLimit(raw: unknown): number {
  const value = single('limit', raw);
  if (value === undefined || value === '') return DEFAULT_PAGE_LIMIT;
  if (!/^\d+$/.test(value)) throw invalid('limit', `must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  const limit = Number(value);
  if (limit < 1 || limit > MAX_PAGE_LIMIT) throw invalid('limit', `must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  return limit;
}

export function parseEnum<T extends string>(field: string, raw: unknown, allowed: readonly T[], fallback: T): T {
  const value = single(field, raw);
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw invalid(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** An identifier filter: non-empty, bounded, printable. */
export function parseId(field: string, raw: unknown): string | undefined {
  const value = single(field, raw);
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > 256 || /[\u0000-\u001f]/.test(value)) {
    throw invalid(field, 'must be 1 to 256 printable characters');
  }
  return value;
}

export function parseBooleanFlag(field: string, raw: unknown): boolean | undefined {
  const value = single(field, raw);
  if (value === undefined || value === '') return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalid(field, 'must be true or false');
}

/**
 * Cursors are opaque to clients: base64url of a small JSON array. Clients must not build them;
 * we may change what is inside. A malformed one is a 400, never a 500.
 */
export function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

export function decodeCursor(raw: unknown, arity: number): string[] | undefined {
  const value = single('cursor', raw);
  if (value === undefined || value === '') return undefined;
  let parts: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new Error('not base64url');
    parts = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw invalid('cursor', 'is not a cursor returned by this API');
  }
  if (!Array.isArray(parts) || parts.length !== arity || !parts.every((p) => typeof p === 'string')) {
    throw invalid('cursor', 'is not a cursor returned by this API');
  }
  return parts as string[];
}

/** An event-list cursor: (occurred_at, event_id) of the last row returned. */
export function decodeEventCursor(raw: unknown): { occurredAt: Date; eventId: string } | undefined {
  const parts = decodeCursor(raw, 2);
  if (!parts) return undefined;
  const occurredAt = new Date(parts[0]);
  if (Number.isNaN(occurredAt.getTime())) throw invalid('cursor', 'is not a cursor returned by this API');
  return { occurredAt, eventId: parts[1] };
}

export function encodeEventCursor(last: { occurredAt: Date; eventId: string }): string {
  return encodeCursor([last.occurredAt.toISOString(), last.eventId]);
}

/** A cursor over bigint ids (rejected events, conflicts). */
export function decodeIdCursor(raw: unknown): string | undefined {
  const parts = decodeCursor(raw, 1);
  if (!parts) return undefined;
  if (!/^\d{1,19}$/.test(parts[0])) throw invalid('cursor', 'is not a cursor returned by this API');
  return parts[0];
}
