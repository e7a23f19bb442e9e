import { usd } from '@tokenmeter/billing';

/**
 * Builders for gateway usage events as the gateway would publish them (snake_case JSON).
 * Deterministic by default so totals in tests can be computed by hand.
 */
export interface GatewayEvent {
  event_id: string;
  occurred_at: string;
  account_id: string;
  api_key_id?: string | null;
  model: string;
  request_id?: string | null;
  usage: Record<string, unknown>;
  metadata?: Record<string, unknown> | null;
}

let counter = 0;

export function aUsageEvent(overrides: Partial<GatewayEvent> = {}): GatewayEvent {
  counter++;
  return {
    event_id: `evt_test_${process.pid}_${Date.now().toString(36)}_${counter}`,
    occurred_at: '2026-11-15T10:30:00.000Z',
    account_id: 'acct_test',
    api_key_id: 'key_test',
    model: 'deepseek-r1',
    request_id: `req_${counter}`,
    usage: { input_tokens: 1000, output_tokens: 500, cache_read_tokens: 200 },
    ...overrides,
  };
}

/** DeepSeek's own usage shape: hit + miss = prompt. */
export function deepseekUsage(promptTokens: number, cacheHitTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    prompt_cache_hit_tokens: cacheHitTokens,
    prompt_cache_miss_tokens: promptTokens - cacheHitTokens,
  };
}

export function openAiUsage(promptTokens: number, cachedTokens: number, completionTokens: number, reasoningTokens = 0) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
    completion_tokens_details: { reasoning_tokens: reasoningTokens },
  };
}

/** The default usage (1000 input, 500 output, 200 cache read) at the seed deepseek-r1 rates, exactly. */
export const DEFAULT_EVENT_COST_USD = '0.00175997';

/** Exact cost of n default events, as totals() prints it (no trailing zeros). */
export function defaultEventsCostUsd(n: number): string {
  return usd(DEFAULT_EVENT_COST_USD).times(n).toString();
}
