import type { EventReceiptRecord, UsageTotalsRecord } from '@tokenmeter/db';

/**
 * Records from libs/db -> the public snake_case JSON. Money stays a decimal string end to end
 * (exact, unrounded); token counts and request counts become JSON numbers.
 *
 * Why numbers are safe for counts: one event carries < 1e9 tokens per type (the parser refuses
 * more), and a query spans at most 400 days (MAX_RANGE_DAYS). Reaching 2^53 (9.007e15) tokens in
 * one answer would need one account to average ~2.6e8 tokens per second for 400 days. Should it
 * ever happen, `count()` fails the request loudly rather than return a rounded number.
 */
export function count(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`count ${value} exceeds 2^53 and cannot be a JSON number`);
  return n;
}

export interface TotalsJson {
  requests: number;
  unpriced_requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost_usd: string;
}

export interface CostBreakdownJson {
  input_cost_usd: string;
  output_cost_usd: string;
  cache_read_cost_usd: string;
  cache_write_cost_usd: string;
  cost_usd: string;
}

export function totalsJson(t: UsageTotalsRecord): TotalsJson {
  return {
    requests: count(t.requests),
    unpriced_requests: count(t.unpricedRequests),
    input_tokens: count(t.inputTokens),
    output_tokens: count(t.outputTokens),
    cache_read_tokens: count(t.cacheReadTokens),
    cache_write_tokens: count(t.cacheWriteTokens),
    cost_usd: t.costUsd,
  };
}

export function costBreakdownJson(t: UsageTotalsRecord): CostBreakdownJson {
  return {
    input_cost_usd: t.inputCostUsd,
    output_cost_usd: t.outputCostUsd,
    cache_read_cost_usd: t.cacheReadCostUsd,
    cache_write_cost_usd: t.cacheWriteCostUsd,
    cost_usd: t.costUsd,
  };
}

/** RFC 3339 in UTC with milliseconds, e.g. 2026-11-15T10:30:00.000Z. */
export function instant(at: Date): string;
export function instant(at: Date | null): string | null;
export function instant(at: Date | null): string | null {
  return at === null ? null : at.toISOString();
}

/** One event as an account or an admin sees it: what was used, what priced it, what it cost. */
export function receiptJson(r: EventReceiptRecord) {
  return {
    event_id: r.eventId,
    account_id: r.accountId,
    api_key_id: r.apiKeyId === '' ? null : r.apiKeyId,
    model: r.model,
    request_id: r.requestId,
    occurred_at: instant(r.occurredAt),
    received_at: instant(r.receivedAt),
    source: r.source,
    // Normalised into four disjoint buckets (each token charged once); reasoning tokens are part of
    // output_tokens and shown for information only.
    tokens: {
      input_tokens: count(r.inputTokens),
      output_tokens: count(r.outputTokens),
      cache_read_tokens: count(r.cacheReadTokens),
      cache_write_tokens: count(r.cacheWriteTokens),
      reasoning_tokens: count(r.reasoningTokens),
    },
    usage_format: r.usageFormat,
    usage_raw: r.usageRaw,
    metadata: r.metadata ?? null,
    price_version: r.priceVersion && {
      id: r.priceVersion.id,
      model: r.priceVersion.modelId,
      effective_from: instant(r.priceVersion.effectiveFrom),
      input_per_mtok: r.priceVersion.inputPerMTok,
      output_per_mtok: r.priceVersion.outputPerMTok,
      cache_read_per_mtok: r.priceVersion.cacheReadPerMTok,
      // null: cache writes are charged at the input rate.
      cache_write_per_mtok: r.priceVersion.cacheWritePerMTok,
    },
    price_override: r.priceOverride && {
      id: r.priceOverride.id,
      kind: r.priceOverride.kind,
      model: r.priceOverride.modelId,
      discount_percent: r.priceOverride.discountPercent,
      input_per_mtok: r.priceOverride.inputPerMTok,
      output_per_mtok: r.priceOverride.outputPerMTok,
      cache_read_per_mtok: r.priceOverride.cacheReadPerMTok,
      cache_write_per_mtok: r.priceOverride.cacheWritePerMTok,
      effective_from: instant(r.priceOverride.effectiveFrom),
      effective_to: instant(r.priceOverride.effectiveTo),
    },
    costs:
      r.costUsd === null
        ? null
        : {
            input_cost_usd: r.inputCostUsd,
            output_cost_usd: r.outputCostUsd,
            cache_read_cost_usd: r.cacheReadCostUsd,
            cache_write_cost_usd: r.cacheWriteCostUsd,
            cost_usd: r.costUsd,
          },
    priced_at: instant(r.pricedAt),
    flags: r.flags,
    invoice_id: r.invoiceId,
  };
}

export type ReceiptJson = ReturnType<typeof receiptJson>;
