import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { costUnitsToString } from '@tokenmeter/billing';
import {
  ROLLUP_COLUMNS,
  ROLLUP_KEY_COLUMNS,
  ROLLUP_MEASURES,
  type HourlyRollupRow,
  type RollupCostColumn,
  type RollupCountColumn,
} from './hourly-rollups';
import type { NewUsageEventRow } from './usage-event-rows';

/**
 * COPY text codecs for the ingest write path. COPY is positional: a line's fields must be in the
 * order of the statement's column list. So each table's columns are written down once, each with
 * the way its field is written, and both the column list and every line come from that one list:
 * the name and the value of a column cannot drift apart.
 */

/** COPY text format: tab-separated, \N for NULL, backslash escapes for \\, tab, newline, CR. */
export function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  return NEEDS_ESCAPE.test(v) ? v.replace(ESCAPES, (c) => ESCAPED[c]) : v;
}
const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** `pricedAt`: the transaction's timestamp (ISO text), written for priced events only. */
type EventField = (e: NewUsageEventRow, pricedAt: string) => string;

const cost = (pick: (c: NonNullable<NewUsageEventRow['costs']>) => bigint): EventField => (e) =>
  e.costs === null ? '\\N' : costUnitsToString(pick(e.costs));

/**
 * The usage_events columns an ingested event writes (the rest have defaults: received_at,
 * invoice_id), in the order both COPYs write them.
 */
const EVENT_COPY: readonly (readonly [column: string, field: EventField])[] = [
  ['event_id', (e) => copyField(e.eventId)],
  ['account_id', (e) => copyField(e.accountId)],
  ['api_key_id', (e) => copyField(e.apiKeyId)],
  ['model', (e) => copyField(e.model)],
  ['request_id', (e) => copyField(e.requestId)],
  ['occurred_at', (e) => e.occurredAt.toISOString()],
  ['input_tokens', (e) => String(e.inputTokens)],
  ['output_tokens', (e) => String(e.outputTokens)],
  ['cache_read_tokens', (e) => String(e.cacheReadTokens)],
  ['cache_write_tokens', (e) => String(e.cacheWriteTokens)],
  ['reasoning_tokens', (e) => String(e.reasoningTokens)],
  ['usage_raw', (e) => copyField(e.usageRawJson)],
  ['usage_format', (e) => copyField(e.usageFormat)],
  ['metadata', (e) => copyField(e.metadataJson)],
  ['payload_hash', (e) => e.payloadHash],
  ['price_version_id', (e) => copyField(e.priceVersionId)],
  ['input_cost_usd', cost((c) => c.input)],
  ['output_cost_usd', cost((c) => c.output)],
  ['cache_read_cost_usd', cost((c) => c.cacheRead)],
  ['cache_write_cost_usd', cost((c) => c.cacheWrite)],
  ['cost_usd', cost((c) => c.total)],
  ['priced_at', (e, pricedAt) => (e.costs === null ? '\\N' : pricedAt)],
  // Flags come from a fixed vocabulary of [a-z_] words: a bare array literal is safe.
  ['flags', (e) => `{${e.flags.join(',')}}`],
  ['source', (e) => e.source],
  ['price_override_id', (e) => copyField(e.priceOverrideId)],
];

const EVENT_FIELDS = EVENT_COPY.map(([, field]) => field);

/** The usage_events columns both event COPYs write, comma-separated, in the order of toEventCopyTexts' `events`. */
export const EVENT_COPY_COLUMNS = EVENT_COPY.map(([column]) => column).join(', ');

/**
 * usage_event_ids, the dedupe of every event_id ever stored: a subset of the usage_events
 * columns, written from the very field strings of the event's usage_events line (so the two
 * tables cannot disagree on them, and nothing is formatted twice).
 */
const EVENT_ID_INDEXES = EVENT_COPY.flatMap(([column], i) => (['event_id', 'account_id', 'occurred_at', 'payload_hash'].includes(column) ? [i] : []));

/** The usage_event_ids columns, comma-separated, in the order of toEventCopyTexts' `ids`. */
export const EVENT_ID_COPY_COLUMNS = EVENT_ID_INDEXES.map((i) => EVENT_COPY[i][0]).join(', ');

/**
 * The usage_events lines of `events` (both write paths) and their usage_event_ids lines (the COPY
 * path), in one pass.
 */
export function toEventCopyTexts(events: readonly NewUsageEventRow[], pricedAt: string): { events: string; ids: string } {
  if (events.length === 0) return { events: '', ids: '' };
  const eventLines = new Array<string>(events.length);
  const idLines = new Array<string>(events.length);
  const values = new Array<string>(EVENT_FIELDS.length);
  const idValues = new Array<string>(EVENT_ID_INDEXES.length);
  for (let r = 0; r < events.length; r++) {
    for (let i = 0; i < EVENT_FIELDS.length; i++) values[i] = EVENT_FIELDS[i](events[r], pricedAt);
    for (let i = 0; i < EVENT_ID_INDEXES.length; i++) idValues[i] = values[EVENT_ID_INDEXES[i]];
    eventLines[r] = values.join('\t');
    idLines[r] = idValues.join('\t');
  }
  return { events: eventLines.join('\n') + '\n', ids: idLines.join('\n') + '\n' };
}

/** Every usage_hourly column, comma-separated, in toRollupCopyText's order. */
export const ROLLUP_COPY_COLUMNS = ROLLUP_COLUMNS.join(', ');

// Derived from the definition, column by column: the key as text, counts as integers, costs
// from cost units as exact decimal text.
const ROLLUP_FIELDS: readonly ((r: HourlyRollupRow) => string)[] = [
  ...ROLLUP_KEY_COLUMNS.map((column) => (r: HourlyRollupRow) => copyField(r[column])),
  ...ROLLUP_MEASURES.map((m) =>
    m.kind === 'usd'
      ? (r: HourlyRollupRow) => costUnitsToString(r[m.column as RollupCostColumn])
      : (r: HourlyRollupRow) => String(r[m.column as RollupCountColumn]),
  ),
];

/** Rollup rows as COPY text, in ROLLUP_COLUMNS order. */
export function toRollupCopyText(rows: readonly HourlyRollupRow[]): string {
  return copyText(rows, ROLLUP_FIELDS, undefined);
}

function copyText<R, C>(rows: readonly R[], fields: readonly ((row: R, context: C) => string)[], context: C): string {
  if (rows.length === 0) return '';
  const lines = new Array<string>(rows.length);
  const values = new Array<string>(fields.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    for (let i = 0; i < fields.length; i++) values[i] = fields[i](row, context);
    lines[r] = values.join('\t');
  }
  return lines.join('\n') + '\n';
}

/** Streams `text` into `COPY <target> (<columns>) FROM STDIN`. */
export async function copyInto(client: PoolClient, target: string, columns: string, text: string): Promise<void> {
  await pipeline(Readable.from([text]), client.query(copyFrom(`COPY ${target} (${columns}) FROM STDIN`)));
}

/**
 * The per-connection temporary tables both write paths COPY into, emptied at every commit. LIKE
 * takes the real tables' columns, types, NOT NULLs and `COLLATE "C"` keys, so staging cannot
 * disagree with them; INCLUDING DEFAULTS lets a COPY leave out received_at as the real insert
 * does. Indexes and constraints are not copied: staging holds a chunk as it came.
 */
export const STAGING_DDL = `
CREATE TEMP TABLE IF NOT EXISTS usage_events_staging (LIKE usage_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS usage_hourly_staging (LIKE usage_hourly INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`;
