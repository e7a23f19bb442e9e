import { auditFlags, parseUsageEvent, priceEventUnits, type Rejection, type UsageEvent } from '@tokenmeter/billing';
import type {
  IngestProgressRow,
  NewUsageEventRow,
  RejectedEventRow,
  StoredOutcome,
  UsageEventsRepository,
} from '@tokenmeter/db';
import type { PriceBookCache, PricingContext } from './price-book.cache';

export type IngestSource = 'kafka' | 'http';

export interface IngestMessage {
  /** Raw bytes from Kafka, or an already-parsed JSON value from the HTTP body. */
  value: Buffer | string | null | unknown;
  key: string | null;
  kafka?: { topic: string; partition: number; offset: string };
}

export type IngestOutcome =
  | { status: 'accepted'; eventId: string; priced: boolean; flags: string[] }
  | { status: 'duplicate'; eventId: string }
  | { status: 'conflict'; eventId: string; reason: string }
  | { status: 'rejected'; eventId: string | null; code: string; reason: string };

/** A validation rejection from libs/billing, or one found later (e.g. `storage_error`). */
export interface IngestRejection {
  code: Rejection['code'] | 'storage_error';
  reason: string;
  eventId: string | null;
}

export interface PreparedRejection {
  index: number;
  rejection: IngestRejection;
  row: RejectedEventRow;
}

/** The CPU part of ingestion (parse, validate, price), done before any I/O. */
export interface PreparedBatch {
  size: number;
  rows: NewUsageEventRow[];
  /** rowMessageIndex[i] is the index in the input of rows[i]. */
  rowMessageIndex: number[];
  rejections: PreparedRejection[];
  maxOccurredAt: Date | null;
}

/**
 * The one ingestion path shared by the Kafka consumer and HTTP ingest:
 * parse -> validate -> normalise -> price at occurred_at -> store once (with rollups).
 */
export class UsageIngestor {
  constructor(
    private readonly events: UsageEventsRepository,
    private readonly priceBooks: PriceBookCache,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async pricingContext(): Promise<PricingContext> {
    return this.priceBooks.current();
  }

  prepare(messages: IngestMessage[], source: IngestSource, pricing: PricingContext): PreparedBatch {
    const now = this.clock();
    const rows: NewUsageEventRow[] = [];
    const rowMessageIndex: number[] = [];
    const rejections: PreparedRejection[] = [];
    let maxOccurredAt: Date | null = null;
    messages.forEach((message, index) => {
      const result =
        message.value === null || message.value === undefined
          ? ({ ok: false, rejection: { code: 'invalid_json', reason: 'message has no value', eventId: null } } as const)
          : parseUsageEvent(message.value, now);
      if (!result.ok) {
        rejections.push({ index, rejection: result.rejection, row: rejectedRow(message, source, result.rejection) });
        return;
      }
      const event = result.event;
      if (!maxOccurredAt || event.occurredAt > maxOccurredAt) maxOccurredAt = event.occurredAt;
      rows.push(toRow(event, source, pricing));
      rowMessageIndex.push(index);
    });
    return { size: messages.length, rows, rowMessageIndex, rejections, maxOccurredAt };
  }

  async record(prepared: PreparedBatch, progress: IngestProgressRow[] = []): Promise<IngestOutcome[]> {
    const stored = await this.events.recordBatch({
      events: prepared.rows,
      rejected: prepared.rejections.map((r) => r.row),
      progress,
    });
    return toOutcomes(prepared, stored);
  }

  /**
   * A batch whose messages are all rejected for a reason found after validation (a message
   * the database refuses for good). Recording it keeps the message instead of looping on it.
   */
  prepareRejected(messages: IngestMessage[], source: IngestSource, rejection: IngestRejection): PreparedBatch {
    return {
      size: messages.length,
      rows: [],
      rowMessageIndex: [],
      rejections: messages.map((message, index) => ({ index, rejection, row: rejectedRow(message, source, rejection) })),
      maxOccurredAt: null,
    };
  }

  /** Prepare and record in one go (HTTP ingest). */
  async ingest(messages: IngestMessage[], source: IngestSource): Promise<IngestOutcome[]> {
    const prepared = this.prepare(messages, source, await this.pricingContext());
    return this.record(prepared);
  }
}

function toOutcomes(prepared: PreparedBatch, stored: StoredOutcome[]): IngestOutcome[] {
  const outcomes = new Array<IngestOutcome>(prepared.size);
  for (const r of prepared.rejections) {
    outcomes[r.index] = { status: 'rejected', eventId: r.rejection.eventId, code: r.rejection.code, reason: r.rejection.reason };
  }
  prepared.rows.forEach((row, i) => {
    const index = prepared.rowMessageIndex[i];
    switch (stored[i]) {
      case 'inserted':
        outcomes[index] = { status: 'accepted', eventId: row.eventId, priced: row.priceVersionId !== null, flags: row.flags };
        break;
      case 'duplicate':
        outcomes[index] = { status: 'duplicate', eventId: row.eventId };
        break;
      case 'conflict':
        outcomes[index] = {
          status: 'conflict',
          eventId: row.eventId,
          reason: 'event_id already stored with a different payload; the first one stands',
        };
        break;
    }
  });
  return outcomes;
}

function toRow(event: UsageEvent, source: IngestSource, pricing: PricingContext): NewUsageEventRow {
  // Map lookups only: the book and every account's overrides are in memory (see PriceBookCache).
  const priced = priceEventUnits(pricing.book, pricing.overrides, event);
  return {
    eventId: event.eventId,
    accountId: event.accountId,
    apiKeyId: event.apiKeyId ?? '',
    model: event.model,
    requestId: event.requestId,
    occurredAt: event.occurredAt,
    inputTokens: event.tokens.inputTokens,
    outputTokens: event.tokens.outputTokens,
    cacheReadTokens: event.tokens.cacheReadTokens,
    cacheWriteTokens: event.tokens.cacheWriteTokens,
    reasoningTokens: event.tokens.reasoningTokens,
    usageRawJson: JSON.stringify(event.usageRaw),
    usageFormat: event.usageFormat,
    metadataJson: event.metadata === null ? null : JSON.stringify(event.metadata),
    payloadHash: event.payloadHash,
    priceVersionId: priced ? priced.priceVersion.id : null,
    priceOverrideId: priced?.override ? priced.override.id : null,
    costs: priced ? priced.costs : null,
    flags: auditFlags(event.tokens, pricing.limits.get(event.model)),
    source,
  };
}

function rejectedRow(message: IngestMessage, source: IngestSource, rejection: IngestRejection): RejectedEventRow {
  return {
    source,
    topic: message.kafka?.topic ?? null,
    partition: message.kafka?.partition ?? null,
    offset: message.kafka?.offset ?? null,
    messageKey: message.key,
    eventId: rejection.eventId,
    rawPayload: rawText(message.value),
    reasonCode: rejection.code,
    reason: rejection.reason,
  };
}

function rawText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? String(value);
}
