import { Injectable } from '@nestjs/common';
import {
  EventReadRepository,
  UsageReadRepository,
  type AccountTotalsCursor,
  type EventExportStream,
  type EventFilter,
} from '@tokenmeter/db';
import { encodeCursor, type TimeRange } from '../common/validation';
import { costBreakdownJson, count, instant, totalsJson } from '../usage/usage-json';
import type { AccountTotalsPageJson, EventConflictPageJson, RejectedEventPageJson, UnpricedUsageJson } from './admin-usage-responses';

/** Admin audits: everything across accounts, read-only. */
@Injectable()
export class AdminUsageService {
  constructor(
    private readonly usage: UsageReadRepository,
    private readonly events: EventReadRepository,
  ) {}

  streamEvents(filter: EventFilter): Promise<EventExportStream> {
    return this.events.streamEvents(filter);
  }

  async listRejectedEvents(
    filter: { from?: Date; to?: Date; reasonCode?: string; source?: string; eventId?: string },
    limit: number,
    afterId?: string,
  ): Promise<RejectedEventPageJson> {
    const rows = await this.events.listRejectedEvents(filter, limit + 1, afterId);
    const page = rows.slice(0, limit);
    return {
      data: page.map((r) => ({
        id: r.id,
        received_at: instant(r.receivedAt),
        source: r.source,
        topic: r.topic,
        partition: r.partition,
        offset: r.offset,
        message_key: r.messageKey,
        event_id: r.eventId,
        reason_code: r.reasonCode,
        reason: r.reason,
        raw_payload: r.rawPayload,
      })),
      next_cursor: rows.length > limit ? encodeCursor([page[page.length - 1].id]) : null,
    };
  }

  async listEventConflicts(filter: { from?: Date; to?: Date; eventId?: string }, limit: number, afterId?: string): Promise<EventConflictPageJson> {
    const rows = await this.events.listEventConflicts(filter, limit + 1, afterId);
    const page = rows.slice(0, limit);
    return {
      data: page.map((c) => ({
        id: c.id,
        event_id: c.eventId,
        received_at: instant(c.receivedAt),
        source: c.source,
        // The stored event (the first one seen) stands; this payload was kept, not counted.
        existing_hash: c.existingHash,
        payload_hash: c.payloadHash,
        raw_payload: c.rawPayload,
      })),
      next_cursor: rows.length > limit ? encodeCursor([page[page.length - 1].id]) : null,
    };
  }

  async listUnpricedUsage(filter: { accountId?: string; model?: string; from?: Date; to?: Date }): Promise<UnpricedUsageJson> {
    const rows = await this.usage.listUnpricedUsage(filter);
    return {
      data: rows.map((r) => ({
        model: r.model,
        account_id: r.accountId,
        events: count(r.events),
        input_tokens: count(r.inputTokens),
        output_tokens: count(r.outputTokens),
        cache_read_tokens: count(r.cacheReadTokens),
        cache_write_tokens: count(r.cacheWriteTokens),
        first_occurred_at: instant(r.firstOccurredAt),
        last_occurred_at: instant(r.lastOccurredAt),
      })),
    };
  }

  async listAccountTotals(range: TimeRange, limit: number, after?: AccountTotalsCursor): Promise<AccountTotalsPageJson> {
    const rows = await this.usage.listAccountTotals(range.from, range.to, limit + 1, after);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      from: instant(range.from),
      to: instant(range.to),
      data: page.map((a) => ({ account_id: a.accountId, ...totalsJson(a), ...costBreakdownJson(a) })),
      next_cursor: rows.length > limit && last ? encodeCursor([last.costUsd, last.accountId]) : null,
    };
  }
}
