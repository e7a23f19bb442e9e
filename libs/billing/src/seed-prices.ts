import { usd } from './money';
import type { ModelLimits, PriceVersion } from './pricing';

/** A row of the `models` table, as plain data. */
export interface SeedModel extends ModelLimits {
  id: string;
  displayName: string;
  provider: string;
}

/** A price version as plain data: exact decimal strings in USD per 1M tokens. */
export interface SeedPriceVersion {
  modelId: string;
  effectiveFrom: Date;
  inputPerMTok: string;
  outputPerMTok: string;
  cacheReadPerMTok: string;
  /** null: cache writes are charged at the input rate. */
  cacheWritePerMTok: string | null;
}

const SEED_EFFECTIVE_FROM = new Date('2025-01-01T00:00:00Z');

// Limits only drive audit flags (exceeds_context_window / exceeds_max_output), which never block
// or change a charge. Where a provider's figure is loose ("128K"), the larger reading is used so
// a request the provider accepted is not flagged.
export const SEED_MODELS: readonly SeedModel[] = [
  // DeepSeek documents deepseek-reasoner as "128K" context and "default 32K, maximum 64K" output
  // (reasoning included). 131072 and 65536 are those figures read as binary K; the 32768 output
  // default would flag legitimate requests that raised max_tokens. (At R1's launch the API was
  // 64K context with 32K CoT + 8K answer, which also stays inside these limits.)
  { id: 'deepseek-r1', displayName: 'DeepSeek R1', provider: 'deepseek', contextWindow: 131072, maxOutputTokens: 65536 },
  // deepseek-chat: "128K" context, output "default 4K, maximum 8K".
  { id: 'deepseek-v3', displayName: 'DeepSeek V3', provider: 'deepseek', contextWindow: 131072, maxOutputTokens: 8192 },
  { id: 'gpt-4o', displayName: 'GPT-4o', provider: 'openai', contextWindow: 128000, maxOutputTokens: 16384 },
  { id: 'gpt-4o-mini', displayName: 'GPT-4o mini', provider: 'openai', contextWindow: 128000, maxOutputTokens: 16384 },
  { id: 'claude-sonnet-4', displayName: 'Claude Sonnet 4', provider: 'anthropic', contextWindow: 200000, maxOutputTokens: 64000 },
  { id: 'claude-3-5-haiku', displayName: 'Claude 3.5 Haiku', provider: 'anthropic', contextWindow: 200000, maxOutputTokens: 8192 },
];

export const SEED_PRICE_VERSIONS: readonly SeedPriceVersion[] = [
  // Rates as set by product for this deployment. NOTE: they are not DeepSeek's published USD list
  // price for deepseek-reasoner ($0.55 / $2.19 / $0.14 cache hit); input and output match the CNY
  // list price (4 / 16 CNY) divided by 7. Kept verbatim: the specs pin them.
  { modelId: 'deepseek-r1', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '0.5714', outputPerMTok: '2.2857', cacheReadPerMTok: '0.2286', cacheWritePerMTok: null },
  // DeepSeek does not charge cache writes separately (and its usage never reports them).
  { modelId: 'deepseek-v3', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '0.27', outputPerMTok: '1.10', cacheReadPerMTok: '0.07', cacheWritePerMTok: null },
  // OpenAI caching is automatic with no write surcharge; its usage reports no cache writes.
  { modelId: 'gpt-4o', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '2.50', outputPerMTok: '10.00', cacheReadPerMTok: '1.25', cacheWritePerMTok: null },
  { modelId: 'gpt-4o-mini', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '0.15', outputPerMTok: '0.60', cacheReadPerMTok: '0.075', cacheWritePerMTok: null },
  // Anthropic prices 5-minute cache writes at 1.25x input and cache reads at 0.1x input.
  { modelId: 'claude-sonnet-4', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '3.00', outputPerMTok: '15.00', cacheReadPerMTok: '0.30', cacheWritePerMTok: '3.75' },
  { modelId: 'claude-3-5-haiku', effectiveFrom: SEED_EFFECTIVE_FROM, inputPerMTok: '0.80', outputPerMTok: '4.00', cacheReadPerMTok: '0.08', cacheWritePerMTok: '1.00' },
];

/** A seed row as a PriceVersion. The id is the caller's: the DB assigns real ids on insert. */
export function priceVersionFromSeed(seed: SeedPriceVersion, id: string): PriceVersion {
  return {
    id,
    modelId: seed.modelId,
    effectiveFrom: new Date(seed.effectiveFrom.getTime()),
    inputPerMTok: usd(seed.inputPerMTok),
    outputPerMTok: usd(seed.outputPerMTok),
    cacheReadPerMTok: usd(seed.cacheReadPerMTok),
    cacheWritePerMTok: seed.cacheWritePerMTok === null ? null : usd(seed.cacheWritePerMTok),
  };
}
