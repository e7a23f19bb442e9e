import { Injectable } from '@nestjs/common';
import {
  EventReadRepository,
  UsageReadRepository,
  type BucketGranularity,
  type BucketGroupBy,
  type EventCursor,
  type EventFilter,
  type UsageFilter,
} from '@tokenmeter/db';
import { FreshnessService } from './freshness';
import { encodeEventCursor, type TimeRange } from '../common/validation';
import {
  costBreakdownJson,
  count,
  instant,
  receiptJson,
  totalsJson,
  type ReceiptJson,
  type ReceiptPageJson,
  type UsageSummaryJson,
  type UsageTimeseriesJson,
} from './usage-json';

/** The account read side: dashboards from rollups, receipts from raw events. */
@Injectable()
export class UsageService {
  constructor(
    private readonly usage: UsageReadRepository,
    private readonly events: EventReadRepository,
    private readonly freshness: FreshnessService,
  ) {}

  /** `filter`: one model and/or one API key (the page and the JSON route narrow the same way). */
  async getSummary(accountId: string, range: TimeRange, filter: UsageFilter = {}): Promise<UsageSummaryJson> {
    const { completeUpTo, result: summary } = await this.freshness.withCompleteUpTo(() =>
      this.usage.summarizeAccount(accountId, range.from, range.to, filter),
    );
    return {
      account_id: accountId,
      from: instant(range.from),
      to: instant(range.to),
      complete_up_to: instant(completeUpTo),
      totals: { ...totalsJson(summary.totals), ...costBreakdownJson(summary.totals) },
      by_model: summary.byModel.map((m) => ({ model: m.model, ...totalsJson(m), ...costBreakdownJson(m) })),
      by_api_key: summary.byApiKey.map((k) => ({ api_key_id: k.apiKeyId, ...totalsJson(k), ...costBreakdownJson(k) })),
    };
  }

  async listBuckets(
    accountId: string,
    range: TimeRange,
    granularity: BucketGranularity,
    groupBy: BucketGroupBy,
    filter: UsageFilter = {},
  ): Promise<UsageTimeseriesJson> {
    const buckets = await this.usage.listBuckets(accountId, range.from, range.to, granularity, groupBy, filter);
    return {
      account_id: accountId,
      from: instant(range.from),
      to: instant(range.to),
      granularity,
      group_by: groupBy,
      buckets: buckets.map((b) => ({
        start: instant(b.start),
        group: b.group,
        requests: count(b.requests),
        unpriced_requests: count(b.unpricedRequests),
        input_tokens: count(b.inputTokens),
        output_tokens: count(b.outputTokens),
        cache_read_tokens: count(b.cacheReadTokens),
        cache_write_tokens: count(b.cacheWriteTokens),
        ...costBreakdownJson(b),
      })),
    };
  }

  async listReceipts(filter: EventFilter, limit: number, after?: EventCursor): Promise<ReceiptPageJson> {
    const rows = await this.events.listEvents(filter, limit + 1, after);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map(receiptJson),
      next_cursor: rows.length > limit && last ? encodeEventCursor(last) : null,
    };
  }

  /** Another account's event is undefined, exactly like a missing one: ids cannot be probed. */
  async getReceipt(eventId: string, accountId: string): Promise<ReceiptJson | undefined> {
    const event = await this.events.getEvent(eventId);
    return event && event.accountId === accountId ? receiptJson(event) : undefined;
  }
}
