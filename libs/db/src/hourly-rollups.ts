import { costUnitsToString } from '@tokenmeter/billing';
import type { NewUsageEventRow } from './usage-events.repository';

/** One usage_hourly delta (costs as exact decimal strings). */
export interface HourlyRollupRow {
  account_id: string;
  api_key_id: string;
  model: string;
  /** Start of the UTC hour, ISO 8601. */
  hour: string;
  requests: number;
  unpriced_requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  input_cost_usd: string;
  output_cost_usd: string;
  cache_read_cost_usd: string;
  cache_write_cost_usd: string;
  cost_usd: string;
}

const HOUR_MS = 3_600_000;

interface Sums {
  accountId: string;
  apiKeyId: string;
  model: string;
  hourMs: number;
  requests: number;
  unpriced: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  inputCost: bigint;
  outputCost: bigint;
  cacheReadCost: bigint;
  cacheWriteCost: bigint;
  cost: bigint;
}

/**
 * What a set of NEW events adds to usage_hourly, per (account, api key, model, UTC hour): the
 * same GROUP BY the set-based write path runs in SQL, done here when every event of a chunk is
 * known to be new. Token sums stay exact as JS numbers (a chunk holds at most a few thousand
 * events of < 10^9 tokens each, far below 2^53); costs are summed exactly as bigint cost units
 * (10^-22 USD, see libs/billing cost-units.ts).
 */
export function hourlyRollups(events: readonly NewUsageEventRow[]): HourlyRollupRow[] {
  const groups = new Map<string, Sums>();
  for (const e of events) {
    const hourMs = Math.floor(e.occurredAt.getTime() / HOUR_MS) * HOUR_MS;
    // NUL cannot occur in ids (the contract allows [A-Za-z0-9._:-]), so it separates safely.
    const key = `${e.accountId}\u0000${e.apiKeyId}\u0000${e.model}\u0000${hourMs}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = {
        accountId: e.accountId,
        apiKeyId: e.apiKeyId,
        model: e.model,
        hourMs,
        requests: 0,
        unpriced: 0,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
        inputCost: 0n,
        outputCost: 0n,
        cacheReadCost: 0n,
        cacheWriteCost: 0n,
        cost: 0n,
      };
      groups.set(key, g);
    }
    g.requests++;
    g.inputTokens += e.inputTokens;
    g.outputTokens += e.outputTokens;
    g.cacheReadTokens += e.cacheReadTokens;
    g.cacheWriteTokens += e.cacheWriteTokens;
    g.reasoningTokens += e.reasoningTokens;
    const c = e.costs;
    if (c === null) {
      g.unpriced++;
      continue;
    }
    g.inputCost += c.input;
    g.outputCost += c.output;
    g.cacheReadCost += c.cacheRead;
    g.cacheWriteCost += c.cacheWrite;
    g.cost += c.total;
  }
  return [...groups.values()].map((g) => ({
    account_id: g.accountId,
    api_key_id: g.apiKeyId,
    model: g.model,
    hour: new Date(g.hourMs).toISOString(),
    requests: g.requests,
    unpriced_requests: g.unpriced,
    input_tokens: g.inputTokens,
    output_tokens: g.outputTokens,
    cache_read_tokens: g.cacheReadTokens,
    cache_write_tokens: g.cacheWriteTokens,
    reasoning_tokens: g.reasoningTokens,
    input_cost_usd: costUnitsToString(g.inputCost),
    output_cost_usd: costUnitsToString(g.outputCost),
    cache_read_cost_usd: costUnitsToString(g.cacheReadCost),
    cache_write_cost_usd: costUnitsToString(g.cacheWriteCost),
    cost_usd: costUnitsToString(g.cost),
  }));
}
