import { usd } from '@tokenmeter/billing';
import type { ModelWithVersions, PriceVersionRecord } from '@tokenmeter/db';

// The price book as the admin API answers it and as the audit log records it (snake_case,
// decimals as strings without trailing zeros, RFC 3339 UTC). The API documents the same shapes
// as zod schemas (apps/api/src/admin/admin-json.ts), which fail to compile if these disagree.

export interface PriceVersionJson {
  id: string;
  model_id: string;
  effective_from: string;
  input_per_mtok: string;
  output_per_mtok: string;
  cache_read_per_mtok: string;
  cache_write_per_mtok: string | null;
}

export interface ModelJson {
  id: string;
  display_name: string | null;
  provider: string | null;
  context_window: number | null;
  max_output_tokens: number | null;
  created_at: string;
  prices: PriceVersionJson[];
}

export function priceVersionJson(v: PriceVersionRecord): PriceVersionJson {
  return {
    id: v.id,
    model_id: v.modelId,
    effective_from: v.effectiveFrom.toISOString(),
    input_per_mtok: usd(v.inputPerMTok).toString(),
    output_per_mtok: usd(v.outputPerMTok).toString(),
    cache_read_per_mtok: usd(v.cacheReadPerMTok).toString(),
    cache_write_per_mtok: v.cacheWritePerMTok === null ? null : usd(v.cacheWritePerMTok).toString(),
  };
}

export function modelJson(m: ModelWithVersions): ModelJson {
  return {
    id: m.id,
    display_name: m.displayName,
    provider: m.provider,
    context_window: m.contextWindow,
    max_output_tokens: m.maxOutputTokens,
    created_at: m.createdAt.toISOString(),
    prices: m.versions.map(priceVersionJson),
  };
}
