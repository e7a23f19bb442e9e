import type { Readable } from 'node:stream';
import type { Pool } from 'pg';
import QueryStream from 'pg-query-stream';
import type { PriceVersionRecord } from './price-book.repository';
import type { PriceOverrideRecord } from './price-overrides.repository';
import { SqlFilter } from './sql-filter';
import type { RejectedEventRow, UsageEventIdentity } from './usage-event-rows';

/** Filters shared by the account event list, the admin event list and the export. All optional. */
export interface EventFilter {
  accountId?: string;
  model?: string;
  /** '' matches events sent without an API key. */
  apiKeyId?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  eventId?: string;
  requestId?: string;
  /** true: only events with at least one audit flag. */
  flagged?: boolean;
}

/** Keyset position: the (occurred_at, event_id) of the last row of the previous page. */
export interface EventCursor {
  occurredAt: Date;
  eventId: string;
}

/** One stored event with what priced it: everything a receipt shows. Numbers are exact strings. */
export interface EventReceiptRecord extends UsageEventIdentity {
  receivedAt: Date;
  source: string;
  inputTokens: string;
  outputTokens: string;
  cacheReadTokens: string;
  cacheWriteTokens: string;
  reasoningTokens: string;
  usageRaw: unknown;
  usageFormat: string;
  metadata: unknown;
  priceVersion: PriceVersionRecord | null;
  priceOverride: Omit<PriceOverrideRecord, 'accountId' | 'createdAt'> | null;
  /** All null while the event is unpriced. */
  inputCostUsd: string | null;
  outputCostUsd: string | null;
  cacheReadCostUsd: string | null;
  cacheWriteCostUsd: string | null;
  costUsd: string | null;
  pricedAt: Date | null;
  flags: string[];
  invoiceId: string | null;
}

/** A flat export row: what the CSV/NDJSON export writes, one per event. */
export interface EventExportRow {
  event_id: string;
  account_id: string;
  api_key_id: string;
  model: string;
  request_id: string | null;
  occurred_at: Date;
  received_at: Date;
  source: string;
  usage_format: string;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  reasoning_tokens: string;
  price_version_id: string | null;
  price_override_id: string | null;
  input_cost_usd: string | null;
  output_cost_usd: string | null;
  cache_read_cost_usd: string | null;
  cache_write_cost_usd: string | null;
  cost_usd: string | null;
  flags: string[];
  invoice_id: string | null;
}

// Each export column and the SQL that reads it, in export order: the SELECT, the CSV header and
// every CSV/NDJSON line follow this one list (the type refuses a column missing or extra).
const EXPORT_SQL = {
  event_id: 'e.event_id',
  account_id: 'e.account_id',
  api_key_id: 'e.api_key_id',
  model: 'e.model',
  request_id: 'e.request_id',
  occurred_at: 'e.occurred_at',
  received_at: 'e.received_at',
  source: 'e.source',
  usage_format: 'e.usage_format',
  input_tokens: 'e.input_tokens::text',
  output_tokens: 'e.output_tokens::text',
  cache_read_tokens: 'e.cache_read_tokens::text',
  cache_write_tokens: 'e.cache_write_tokens::text',
  reasoning_tokens: 'e.reasoning_tokens::text',
  price_version_id: 'e.price_version_id::text',
  price_override_id: 'e.price_override_id::text',
  input_cost_usd: 'trim_scale(e.input_cost_usd)::text',
  output_cost_usd: 'trim_scale(e.output_cost_usd)::text',
  cache_read_cost_usd: 'trim_scale(e.cache_read_cost_usd)::text',
  cache_write_cost_usd: 'trim_scale(e.cache_write_cost_usd)::text',
  cost_usd: 'trim_scale(e.cost_usd)::text',
  flags: 'e.flags',
  invoice_id: 'e.invoice_id',
} as const satisfies Record<keyof EventExportRow, string>;

export const EVENT_EXPORT_COLUMNS = Object.keys(EXPORT_SQL) as readonly (keyof EventExportRow)[];

/** A streamed query holding a pooled connection until `release` (called on end, error or abort). */
export interface EventExportStream {
  rows: Readable;
  release(): void;
}

/** A stored rejection: what the ingest path wrote, plus its id and arrival time. */
export interface RejectedEventRecord extends RejectedEventRow {
  id: string;
  receivedAt: Date;
}

export interface EventConflictRecord {
  id: string;
  eventId: string;
  existingHash: string;
  payloadHash: string;
  rawPayload: string;
  source: string;
  receivedAt: Date;
}

const RECEIPT_SELECT = `
SELECT e.event_id, e.account_id, e.api_key_id, e.model, e.request_id, e.occurred_at, e.received_at, e.source,
       e.input_tokens::text, e.output_tokens::text, e.cache_read_tokens::text, e.cache_write_tokens::text,
       e.reasoning_tokens::text, e.usage_raw, e.usage_format, e.metadata,
       e.price_version_id::text, pv.model_id AS pv_model_id, pv.effective_from AS pv_effective_from,
       trim_scale(pv.input_per_mtok)::text AS pv_input, trim_scale(pv.output_per_mtok)::text AS pv_output,
       trim_scale(pv.cache_read_per_mtok)::text AS pv_cache_read, trim_scale(pv.cache_write_per_mtok)::text AS pv_cache_write,
       e.price_override_id::text, o.kind AS o_kind, o.model_id AS o_model_id, trim_scale(o.discount_percent)::text AS o_discount,
       trim_scale(o.input_per_mtok)::text AS o_input, trim_scale(o.output_per_mtok)::text AS o_output,
       trim_scale(o.cache_read_per_mtok)::text AS o_cache_read, trim_scale(o.cache_write_per_mtok)::text AS o_cache_write,
       o.effective_from AS o_effective_from, o.effective_to AS o_effective_to,
       trim_scale(e.input_cost_usd)::text AS input_cost_usd, trim_scale(e.output_cost_usd)::text AS output_cost_usd,
       trim_scale(e.cache_read_cost_usd)::text AS cache_read_cost_usd, trim_scale(e.cache_write_cost_usd)::text AS cache_write_cost_usd,
       trim_scale(e.cost_usd)::text AS cost_usd, e.priced_at, e.flags, e.invoice_id
FROM usage_events e
LEFT JOIN price_versions pv ON pv.id = e.price_version_id
LEFT JOIN account_price_overrides o ON o.id = e.price_override_id`;

const EXPORT_SELECT = `SELECT ${EVENT_EXPORT_COLUMNS.map((c) => `${EXPORT_SQL[c]} AS ${c}`).join(', ')} FROM usage_events e`;

/** Rows fetched per round trip by the export cursor: bounds memory, not the export size. */
const EXPORT_BATCH_ROWS = 1000;

export class EventReadRepository {
  constructor(private readonly pool: Pool) {}

  async getEvent(eventId: string): Promise<EventReceiptRecord | undefined> {
    const f = eventFilter({ eventId });
    const { rows } = await this.pool.query(`${RECEIPT_SELECT} ${f.where}`, f.params);
    return rows.length === 0 ? undefined : toReceipt(rows[0]);
  }

  /**
   * Newest first, keyset-paginated on (occurred_at, event_id): stable under concurrent inserts
   * (a page never repeats or skips a row that existed when the first page was read) and as cheap
   * on page 1000 as on page 1. Fetch limit + 1 to learn whether there is a next page.
   */
  async listEvents(filter: EventFilter, limit: number, after?: EventCursor): Promise<EventReceiptRecord[]> {
    const f = eventFilter(filter);
    if (after) f.addRaw(`(e.occurred_at, e.event_id) < (${f.param(after.occurredAt)}, ${f.param(after.eventId)})`);
    const { rows } = await this.pool.query(
      `${RECEIPT_SELECT} ${f.where} ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT ${f.param(limit)}`,
      f.params,
    );
    return rows.map(toReceipt);
  }

  /**
   * Every matching event, oldest first, through a server-side cursor: the connection is held for
   * the whole export and rows are fetched only as fast as the consumer reads them (stream
   * backpressure), so memory stays constant for any number of rows.
   */
  async streamEvents(filter: EventFilter): Promise<EventExportStream> {
    const f = eventFilter(filter);
    const client = await this.pool.connect();
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      // A connection whose cursor was abandoned mid-read may still be streaming: discard it.
      client.release(err);
    };
    try {
      const query = new QueryStream(`${EXPORT_SELECT} ${f.where} ORDER BY e.occurred_at, e.event_id`, f.params, {
        batchSize: EXPORT_BATCH_ROWS,
      });
      const rows = client.query(query);
      rows.once('end', () => release());
      rows.once('error', (err: Error) => release(err));
      rows.once('close', () => release(rows.readableEnded ? undefined : new Error('export stream closed early')));
      return { rows, release: () => release() };
    } catch (err) {
      release(err as Error);
      throw err;
    }
  }

  /** Newest first, keyset on id (ids grow with insertion). */
  async listRejectedEvents(
    filter: { from?: Date; to?: Date; reasonCode?: string; source?: string; eventId?: string },
    limit: number,
    afterId?: string,
  ): Promise<RejectedEventRecord[]> {
    const f = new SqlFilter();
    if (filter.from) f.add('received_at >= ?', filter.from);
    if (filter.to) f.add('received_at < ?', filter.to);
    if (filter.reasonCode !== undefined) f.add('reason_code = ?', filter.reasonCode);
    if (filter.source !== undefined) f.add('source = ?', filter.source);
    if (filter.eventId !== undefined) f.add('event_id = ?', filter.eventId);
    if (afterId !== undefined) f.add('id < ?::bigint', afterId);
    const { rows } = await this.pool.query(
      `SELECT id::text, received_at, source, topic, partition, "offset"::text, message_key, event_id, raw_payload, reason_code, reason
       FROM rejected_events ${f.where} ORDER BY rejected_events.id DESC LIMIT ${f.param(limit)}`,
      f.params,
    );
    return rows.map((r) => ({
      id: r.id,
      receivedAt: r.received_at,
      source: r.source,
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      messageKey: r.message_key,
      eventId: r.event_id,
      rawPayload: r.raw_payload,
      reasonCode: r.reason_code,
      reason: r.reason,
    }));
  }

  /** Newest first, keyset on id. */
  async listEventConflicts(
    filter: { from?: Date; to?: Date; eventId?: string },
    limit: number,
    afterId?: string,
  ): Promise<EventConflictRecord[]> {
    const f = new SqlFilter();
    if (filter.from) f.add('received_at >= ?', filter.from);
    if (filter.to) f.add('received_at < ?', filter.to);
    if (filter.eventId !== undefined) f.add('event_id = ?', filter.eventId);
    if (afterId !== undefined) f.add('id < ?::bigint', afterId);
    const { rows } = await this.pool.query(
      `SELECT id::text, event_id, existing_hash, payload_hash, raw_payload, source, received_at
       FROM event_conflicts ${f.where} ORDER BY event_conflicts.id DESC LIMIT ${f.param(limit)}`,
      f.params,
    );
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      existingHash: r.existing_hash,
      payloadHash: r.payload_hash,
      rawPayload: r.raw_payload,
      source: r.source,
      receivedAt: r.received_at,
    }));
  }
}

function eventFilter(filter: EventFilter): SqlFilter {
  const f = new SqlFilter();
  if (filter.accountId !== undefined) f.add('e.account_id = ?', filter.accountId);
  if (filter.model !== undefined) f.add('e.model = ?', filter.model);
  if (filter.apiKeyId !== undefined) f.add('e.api_key_id = ?', filter.apiKeyId);
  if (filter.from !== undefined) f.add('e.occurred_at >= ?', filter.from);
  if (filter.to !== undefined) f.add('e.occurred_at < ?', filter.to);
  if (filter.eventId !== undefined) {
    // usage_events has no index on event_id alone (it is partitioned by month; its key is
    // (account_id, occurred_at, event_id)): usage_event_ids says where the event is, so the read
    // is one key lookup in one month. An event of a month retention dropped is found nowhere.
    const id = f.param(filter.eventId);
    f.addRaw(
      `(e.account_id, e.occurred_at, e.event_id) = ` +
        `(SELECT i.account_id, i.occurred_at, i.event_id FROM usage_event_ids i WHERE i.event_id = ${id})`,
    );
  }
  if (filter.requestId !== undefined) f.add('e.request_id = ?', filter.requestId);
  if (filter.flagged === true) f.addRaw("e.flags <> '{}'");
  return f;
}

function toReceipt(r: Record<string, any>): EventReceiptRecord {
  return {
    eventId: r.event_id,
    accountId: r.account_id,
    apiKeyId: r.api_key_id,
    model: r.model,
    requestId: r.request_id,
    occurredAt: r.occurred_at,
    receivedAt: r.received_at,
    source: r.source,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cacheReadTokens: r.cache_read_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    reasoningTokens: r.reasoning_tokens,
    usageRaw: r.usage_raw,
    usageFormat: r.usage_format,
    metadata: r.metadata,
    priceVersion:
      r.price_version_id === null || r.pv_model_id === null
        ? null
        : {
            id: r.price_version_id,
            modelId: r.pv_model_id,
            effectiveFrom: r.pv_effective_from,
            inputPerMTok: r.pv_input,
            outputPerMTok: r.pv_output,
            cacheReadPerMTok: r.pv_cache_read,
            cacheWritePerMTok: r.pv_cache_write,
          },
    priceOverride:
      r.price_override_id === null || r.o_kind === null
        ? null
        : {
            id: r.price_override_id,
            kind: r.o_kind,
            modelId: r.o_model_id,
            discountPercent: r.o_discount,
            inputPerMTok: r.o_input,
            outputPerMTok: r.o_output,
            cacheReadPerMTok: r.o_cache_read,
            cacheWritePerMTok: r.o_cache_write,
            effectiveFrom: r.o_effective_from,
            effectiveTo: r.o_effective_to,
          },
    inputCostUsd: r.input_cost_usd,
    outputCostUsd: r.output_cost_usd,
    cacheReadCostUsd: r.cache_read_cost_usd,
    cacheWriteCostUsd: r.cache_write_cost_usd,
    costUsd: r.cost_usd,
    pricedAt: r.priced_at,
    flags: r.flags,
    invoiceId: r.invoice_id,
  };
}
