import { Body, Param, type PipeTransform, Query } from '@nestjs/common';
import { ApiBody, ApiParam, ApiQuery } from '@nestjs/swagger';
import { type RefinementCtx, z, type ZodIssue, type ZodRawShape, type ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { PERIOD } from '@tokenmeter/billing';
import { parseRfc3339Ms } from '@tokenmeter/billing/rfc3339';
import { ApiError } from './api-error';

/**
 * The one validation path of the API. Every query, path parameter and body is described by a zod
 * schema; the same schema validates the request (400 `validation_failed`, details naming the field)
 * and, through `openApiSchema`, becomes the OpenAPI description of that input. A constraint added
 * to a schema is therefore enforced and documented at once, and cannot be one without the other.
 *
 *   list(@ValidQuery(listQuery) q: z.output<typeof listQuery>) {...}
 *   create(@ValidParam('id', identifier) id: string, @ValidBody(createBody) b: z.output<typeof createBody>) {...}
 */

type Where = 'body' | 'query' | 'path';

export function parseInput<S extends ZodTypeAny>(schema: S, input: unknown, where: Where): z.output<S> {
  if (where === 'body' && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw new ApiError(400, 'validation_failed', 'body: must be a JSON object', { field: 'body', issues: [] });
  }
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ field: issue.path.length > 0 ? issue.path.join('.') : where, message: messageOf(issue) }));
  const first = issues[0];
  throw new ApiError(400, 'validation_failed', `${first.field}: ${first.message}`, { field: first.field, issues });
}

function messageOf(issue: ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return 'is required';
  return issue.message;
}

class ZodPipe implements PipeTransform {
  constructor(
    private readonly schema: ZodTypeAny,
    private readonly where: Where,
    private readonly field?: string,
  ) {}

  transform(value: unknown): unknown {
    if (this.where !== 'path') return parseInput(this.schema, value, this.where);
    // A path parameter is validated on its own; errors name it as the other inputs' fields.
    return parseInput(z.object({ [this.field!]: this.schema }), { [this.field!]: value }, 'path')[this.field!];
  }
}

// OpenAPI extras that zod cannot say (`format: date-time`), keyed by the schema's definition.
const EXTRAS = new WeakMap<object, Record<string, unknown>>();

function withExtras<T extends ZodTypeAny>(schema: T, extras: Record<string, unknown>): T {
  EXTRAS.set(schema._def, extras);
  return schema;
}

/** The OpenAPI 3 schema of what a client sends (the input side of transforms and pipes). */
export function openApiSchema(schema: ZodTypeAny): Record<string, unknown> {
  const json = zodToJsonSchema(schema, {
    target: 'openApi3',
    $refStrategy: 'none',
    effectStrategy: 'input',
    pipeStrategy: 'input',
    removeAdditionalStrategy: 'strict',
    postProcess: (json, def) => (json && EXTRAS.has(def) ? { ...json, ...EXTRAS.get(def) } : json),
  }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

function descriptorOf(target: object, key: string | symbol | undefined): PropertyDescriptor {
  return Object.getOwnPropertyDescriptor(target, key!)!;
}

/** The body, validated by `schema` (a JSON object) and documented as the request body. */
export function ValidBody(schema: ZodTypeAny): ParameterDecorator {
  return (target, key, index) => {
    Body(new ZodPipe(schema, 'body'))(target, key, index);
    ApiBody({ schema: openApiSchema(schema) as never })(target, key!, descriptorOf(target, key));
  };
}

/** The query string, validated by `schema` (an object of query fields, possibly with cross-field rules). */
export function ValidQuery(schema: ZodTypeAny): ParameterDecorator {
  return (target, key, index) => {
    Query(new ZodPipe(schema, 'query'))(target, key, index);
    const json = openApiSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      const { description, ...rest } = property;
      ApiQuery({ name, required: json.required?.includes(name) ?? false, description: description as string | undefined, schema: rest as never })(
        target,
        key!,
        descriptorOf(target, key),
      );
    }
  };
}

/** One path parameter, validated by `schema` and documented with its constraints. */
export function ValidParam(name: string, schema: ZodTypeAny): ParameterDecorator {
  return (target, key, index) => {
    Param(name, new ZodPipe(schema, 'path', name))(target, key, index);
    const { description, ...rest } = openApiSchema(schema);
    ApiParam({ name, required: true, description: description as string | undefined, schema: rest as never })(target, key!, descriptorOf(target, key));
  };
}

/**
 * Cross-field rules (`to` after `from`, ...) run only once every field is valid: zod runs an
 * object's refinements even after a field failed, with that field's value missing, and a rule
 * that then calls `.getTime()` on it was a 500. Piping into the rule skips it on dirty input.
 */
export function whenValid<S extends ZodTypeAny>(schema: S, rule: (value: z.output<S>, ctx: RefinementCtx) => void) {
  return schema.pipe(z.custom<z.output<S>>(() => true).superRefine(rule));
}

// ---------------------------------------------------------------------------------------------
// Field schemas, each used wherever that kind of value is accepted.

// Money and rates travel as JSON strings ("2.50"), never numbers: a JSON number is a binary
// float in most clients, and 0.1 + 0.2 is how invoices go wrong. The DB column is DECIMAL(20,10).
export const DECIMAL_RATE = /^\d{1,10}(\.\d{1,10})?$/;

/** A non-negative USD rate per million tokens, as a decimal string with at most 10 decimals. */
export const rateString = z
  .string({ invalid_type_error: 'must be a decimal string such as "2.50" (JSON numbers are refused for money)' })
  .regex(DECIMAL_RATE, 'must be a non-negative decimal string with at most 10 integer digits and 10 decimals, e.g. "2.50"')
  .describe('USD per million tokens, a decimal STRING such as "2.50" (JSON numbers are refused)');

// What libs/billing/rfc3339 accepts, as a pattern for the document (the calendar check is the
// parser's: 2025-02-30 matches the pattern and is still refused).
const RFC3339_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$';
// A whole UTC hour: minutes and seconds zero in an offset of whole hours.
const HOUR_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:00:00(\\.0+)?([Zz]|[+-]\\d{2}:00)$';

function instantOf(pattern: string, rule: string, example: string, extras: Record<string, unknown>) {
  const text = withExtras(
    z
      .string({ invalid_type_error: `must be given once, as an RFC 3339 date-time string such as "${example}"` })
      .max(64, 'must be at most 64 characters')
      .regex(new RegExp(pattern), `must be ${rule} such as "${example}"`),
    { example, ...extras },
  );
  return text.transform((value, ctx) => {
    const ms = parseRfc3339Ms(value);
    if (ms === null) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `is not a calendar date-time (got "${value}")` });
      return z.NEVER;
    }
    return new Date(ms);
  });
}

/** RFC 3339 with an explicit offset (the event contract's rule), normalised to a Date. */
export const instant = instantOf(RFC3339_PATTERN, 'an RFC 3339 date-time with an offset', '2026-11-01T00:00:00Z', { format: 'date-time' });

/** An instant that is a whole UTC hour (rollup-backed ranges; usage is aggregated per hour). */
// No `format: date-time` here: the pattern is the whole rule, and a generator asked for both
// draws date-times and throws away all but the 1 in 3,600 on the hour.
export const hourInstant = instantOf(HOUR_PATTERN, 'a whole UTC hour in RFC 3339', '2026-11-01T00:00:00Z', {});

/** Ids we mint or accept (accounts, models): printable, no spaces, bounded. */
export const identifier = z
  .string({ invalid_type_error: 'must be given once, as a string' })
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:\-/]*$/, 'may contain only letters, digits and . _ : - / (starting with a letter or digit)');

/**
 * A filter or path parameter naming an id: what the event contract allows (ID_PATTERN) and what
 * admins may mint (`identifier`, which also allows "/"), so every stored id can be asked for.
 */
export const idFilter = z
  .string({ invalid_type_error: 'must be given once, as a string' })
  .regex(/^[A-Za-z0-9._:\-/]{1,128}$/, 'must be 1-128 characters from [A-Za-z0-9._:-/]');

/**
 * Free text people type (names, descriptions): bounded, and without NUL, which a Postgres text
 * column cannot hold (it was a 500). Other control characters are allowed: they are data.
 */
export function freeText(max: number) {
  return z
    .string({ invalid_type_error: 'must be a string' })
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[^\u0000]*$/, 'must not contain NUL (\\u0000) characters');
}

/** A free-text filter (model names, request ids, reason codes): bounded, no control characters. */
export function textFilter(max: number) {
  return z
    .string({ invalid_type_error: 'must be given once, as a string' })
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');
}

/** A billing period: a calendar month, UTC. */
export const period = z
  .string({ invalid_type_error: 'must be given once, as a string such as "2026-11"' })
  .regex(PERIOD, 'must be a month such as "2026-11"');

export const MAX_PAGE_LIMIT = 1000;

export const pageLimit = withExtras(
  z
    .string({ invalid_type_error: 'must be given once' })
    .regex(/^\d{1,4}$/, `must be an integer from 1 to ${MAX_PAGE_LIMIT}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be an integer from 1 to ${MAX_PAGE_LIMIT}`).max(MAX_PAGE_LIMIT, `must be an integer from 1 to ${MAX_PAGE_LIMIT}`))
    .default('100'),
  { type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT, default: 100, pattern: undefined, format: undefined },
);

/** A query flag: exactly `true` or `false`. */
export const booleanFlag = z
  .enum(['true', 'false'], { errorMap: () => ({ message: 'must be true or false' }) })
  .transform((v) => v === 'true');

/** A query enum with a default; the message lists the allowed values. */
export function choice<const T extends string>(values: readonly [T, ...T[]], fallback: NoInfer<T>) {
  return z.enum(values as [T, ...T[]], { errorMap: () => ({ message: `must be one of ${values.join(', ')}` }) }).default(fallback);
}

/** Opaque cursors: base64url of a JSON array of strings. Clients pass back what they were given. */
export function encodeCursor(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

/** A cursor of `arity` strings, each checked by `valid`; the parsed parts, or undefined when absent. */
export function cursor(arity: number, valid: (parts: string[]) => boolean = () => true) {
  const schema = z
    .string({ invalid_type_error: 'must be given once' })
    .max(2048, 'is not a cursor returned by this API')
    .regex(/^[A-Za-z0-9_-]*$/, 'is not a cursor returned by this API')
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      try {
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
  return schema.describe('next_cursor of the previous page (opaque)');
}

/** An event-list cursor: (occurred_at, event_id) of the last row returned. */
export const eventCursor = cursor(2, ([at]) => parseRfc3339Ms(at) !== null).transform((parts) =>
  parts ? { occurredAt: new Date(parseRfc3339Ms(parts[0])!), eventId: parts[1] } : undefined,
);

export function encodeEventCursor(last: { occurredAt: Date; eventId: string }): string {
  return encodeCursor([last.occurredAt.toISOString(), last.eventId]);
}

/** A cursor over bigint ids (rejected events, conflicts, audit entries). */
export const idCursor = cursor(1, ([id]) => /^\d{1,19}$/.test(id)).transform((parts) => parts?.[0]);

// ---------------------------------------------------------------------------------------------
// Time ranges: `from` inclusive, `to` exclusive, to > from, at most MAX_RANGE_DAYS apart.

export const MAX_RANGE_DAYS = 400;
const DAY_MS = 86_400_000;

export interface TimeRange {
  from: Date;
  to: Date;
}

export function rangeFields<R extends boolean>(options: { required: R; hourAligned: boolean }, what = 'occurred_at') {
  const end = options.hourAligned ? hourInstant : instant;
  const from = end.describe(`Inclusive (${what} >= from)${options.hourAligned ? ', a whole UTC hour' : ''}`);
  const to = end.describe(`Exclusive (${what} < to)${options.hourAligned ? ', a whole UTC hour' : ''}, at most ${MAX_RANGE_DAYS} days after from`);
  return (options.required ? { from, to } : { from: from.optional(), to: to.optional() }) as R extends true
    ? { from: typeof from; to: typeof to }
    : { from: z.ZodOptional<typeof from>; to: z.ZodOptional<typeof to> };
}

/** The rule every range shares, applied once the fields themselves are valid. */
export function rangeRule(value: { from?: Date; to?: Date }, ctx: RefinementCtx): void {
  const { from, to } = value;
  if (!from || !to) return;
  if (to.getTime() <= from.getTime()) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: 'must be after from' });
  else if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: `must be at most ${MAX_RANGE_DAYS} days after from` });
  }
}

/** A query object with a time range and other fields, the range rule applied once all are valid. */
export function rangeQuery<S extends ZodRawShape, R extends boolean>(
  options: { required: R; hourAligned: boolean; what?: string },
  shape: S,
) {
  return whenValid(z.object({ ...rangeFields(options, options.what), ...shape }), rangeRule);
}
