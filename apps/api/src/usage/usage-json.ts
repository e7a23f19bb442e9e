import { z } from 'zod';
import type { EventReceiptRecord, UsageTotalsRecord } from '@tokenmeter/db';
import { dateTime, integerCount, LIST_RATES, OVERRIDE_TERMS, pageOf, usdAmount } from '../common/response-fields';

/**
 * Records from libs/db -> the public snake_case JSON. Money stays a decimal string end to end
 * (exact, unrounded); token counts and request counts become JSON numbers.
 *
 * Why numbers are safe for counts: one event carries < 1e9 tokens per type (the parser refuses
 * more), and a query spans at most 400 days (MAX_RANGE_DAYS). Reaching 2^53 (9.007e15) tokens in
 * one answer would need one account to average ~2.6e8 tokens per second for 400 days. Should it
 * ever happen, `count()` fails the request loudly rather than return a rounded number.
 *
 * Each shape is a zod schema (documented in /openapi.json by ApiAnswer) and each builder returns
 * `z.input` of it, so the builder and the document cannot drift apart.
 */
export function count(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`count ${value} exceeds 2^53 and cannot be a JSON number`);
  return n;
}

/** The four disjoint token counts, as every usage answer carries them. */
export const TOKEN_COUNTS = {
  input_tokens: integerCount.describe('Input tokens not read from or written to the cache'),
  output_tokens: integerCount.describe('Output tokens (reasoning tokens included)'),
  cache_read_tokens: integerCount,
  cache_write_tokens: integerCount,
};

export const TotalsSchema = z
  .object({
    requests: integerCount.describe('Events'),
    unpriced_requests: integerCount.describe('Events with no price in force (not in cost_usd until repriced)'),
    ...TOKEN_COUNTS,
    cost_usd: usdAmount,
  })
  .strict();
export type TotalsJson = z.input<typeof TotalsSchema>;

export const CostBreakdownSchema = z
  .object({
    input_cost_usd: usdAmount,
    output_cost_usd: usdAmount,
    cache_read_cost_usd: usdAmount,
    cache_write_cost_usd: usdAmount,
    cost_usd: usdAmount.describe('The sum of the four per-type costs'),
  })
  .strict();
export type CostBreakdownJson = z.input<typeof CostBreakdownSchema>;

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

const range = {
  from: dateTime.describe('Inclusive, as asked'),
  to: dateTime.describe('Exclusive, as asked'),
};

/** GET /v1/usage/summary */
export const UsageSummarySchema = z
  .object({
    account_id: z.string(),
    ...range,
    complete_up_to: dateTime
      .nullable()
      .describe('All usage published before this instant has been ingested; later hours may still grow. null: unknown (nothing ingested yet)'),
    totals: z
      .object({ ...TotalsSchema.shape, ...CostBreakdownSchema.shape })
      .strict()
      .describe('cost_usd is exactly the sum of the four per-type costs, and of by_model (or by_api_key) cost_usd'),
    by_model: z.array(z.object({ model: z.string(), ...TotalsSchema.shape, ...CostBreakdownSchema.shape }).strict()).describe('Largest cost first; sums exactly to totals'),
    by_api_key: z
      .array(z.object({ api_key_id: z.string().nullable().describe('null: usage sent without an API key'), ...TotalsSchema.shape, ...CostBreakdownSchema.shape }).strict())
      .describe('Largest cost first; sums exactly to totals'),
  })
  .strict();
export type UsageSummaryJson = z.input<typeof UsageSummarySchema>;

/** GET /v1/usage/timeseries */
export const UsageTimeseriesSchema = z
  .object({
    account_id: z.string(),
    ...range,
    granularity: z.enum(['hour', 'day']),
    group_by: z.enum(['none', 'model', 'api_key']),
    buckets: z
      .array(
        z
          .object({
            start: dateTime.describe('Start of the hour or UTC day'),
            group: z.string().nullable().describe('The model or API key id; null for group_by=none and for usage sent without an API key'),
            ...TotalsSchema.shape,
            ...CostBreakdownSchema.shape,
          })
          .strict(),
      )
      .describe('Non-empty buckets only, oldest first'),
  })
  .strict();
export type UsageTimeseriesJson = z.input<typeof UsageTimeseriesSchema>;

/** One event as an account or an admin sees it: what was used, what priced it, what it cost. */
export const ReceiptSchema = z
  .object({
    event_id: z.string(),
    account_id: z.string(),
    api_key_id: z.string().nullable().describe('null: the gateway sent no API key'),
    model: z.string(),
    request_id: z.string().nullable(),
    occurred_at: dateTime,
    received_at: dateTime,
    source: z.string().describe('How the event arrived: kafka or http'),
    tokens: z
      .object({ ...TOKEN_COUNTS, reasoning_tokens: integerCount.describe('Part of output_tokens, for information only') })
      .strict()
      .describe('Normalised into four disjoint buckets, each token charged once'),
    usage_format: z.string().describe('The usage shape the gateway sent: canonical, openai, anthropic or deepseek'),
    usage_raw: z.unknown().describe('The usage object exactly as the gateway sent it'),
    metadata: z.record(z.unknown()).nullable(),
    price_version: z
      .object({
        id: z.string(),
        model: z.string(),
        effective_from: dateTime,
        ...LIST_RATES,
      })
      .strict()
      .nullable()
      .describe('The list price in force at occurred_at; null while unpriced'),
    price_override: z
      .object({
        id: z.string(),
        kind: z.enum(['rate_card', 'discount']),
        model: z.string().nullable().describe('null: a discount on every model'),
        discount_percent: z.string().nullable().describe('Discounts only: a decimal string, e.g. "12.5"'),
        ...OVERRIDE_TERMS,
      })
      .strict()
      .nullable()
      .describe("The account's override that priced the event, if any"),
    costs: CostBreakdownSchema.nullable().describe('null while unpriced'),
    priced_at: dateTime.nullable(),
    flags: z.array(z.string()).describe('Audit flags, e.g. exceeds_context_window, exceeds_max_output'),
    invoice_id: z.string().nullable().describe('The invoice that billed this event, once one has'),
  })
  .strict();
export type ReceiptJson = z.input<typeof ReceiptSchema>;

export const ReceiptPageSchema = pageOf(ReceiptSchema);
export type ReceiptPageJson = z.input<typeof ReceiptPageSchema>;

export function receiptJson(r: EventReceiptRecord): ReceiptJson {
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
    // The event contract admits an object or null (libs/billing refuses anything else at ingest).
    metadata: (r.metadata ?? null) as Record<string, unknown> | null,
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
    costs: costsOf(r),
    priced_at: instant(r.pricedAt),
    flags: r.flags,
    invoice_id: r.invoiceId,
  };
}

/** Pricing writes the five costs together: all null (unpriced) or all set. Anything else is a bug, said loudly. */
function costsOf(r: EventReceiptRecord): CostBreakdownJson | null {
  const { inputCostUsd, outputCostUsd, cacheReadCostUsd, cacheWriteCostUsd, costUsd } = r;
  if (costUsd === null) return null;
  if (inputCostUsd === null || outputCostUsd === null || cacheReadCostUsd === null || cacheWriteCostUsd === null) {
    throw new Error(`event ${r.eventId}: cost_usd is set but a per-type cost is null`);
  }
  return {
    input_cost_usd: inputCostUsd,
    output_cost_usd: outputCostUsd,
    cache_read_cost_usd: cacheReadCostUsd,
    cache_write_cost_usd: cacheWriteCostUsd,
    cost_usd: costUsd,
  };
}
