import { usd } from '@tokenmeter/billing';
import type { AccountRecord, AuditRecord, ModelWithVersions, PriceOverrideRecord, PriceVersionRecord } from '@tokenmeter/db';

// The admin API's JSON (snake_case, decimals as strings without trailing zeros, RFC 3339 UTC).
// Audit entries record the same representation, so before/after read like the API.

const dec = (x: string | null): string | null => (x === null ? null : usd(x).toString());

export function accountJson(a: AccountRecord) {
  return { id: a.id, name: a.name, email: a.email, created_at: a.createdAt.toISOString(), updated_at: a.updatedAt.toISOString() };
}

export function priceVersionJson(v: PriceVersionRecord) {
  return {
    id: v.id,
    model_id: v.modelId,
    effective_from: v.effectiveFrom.toISOString(),
    input_per_mtok: dec(v.inputPerMTok),
    output_per_mtok: dec(v.outputPerMTok),
    cache_read_per_mtok: dec(v.cacheReadPerMTok),
    cache_write_per_mtok: dec(v.cacheWritePerMTok),
  };
}

export function modelJson(m: ModelWithVersions) {
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

export function priceOverrideJson(o: PriceOverrideRecord) {
  return {
    id: o.id,
    account_id: o.accountId,
    kind: o.kind,
    model_id: o.modelId,
    discount_percent: dec(o.discountPercent),
    input_per_mtok: dec(o.inputPerMTok),
    output_per_mtok: dec(o.outputPerMTok),
    cache_read_per_mtok: dec(o.cacheReadPerMTok),
    cache_write_per_mtok: dec(o.cacheWritePerMTok),
    effective_from: o.effectiveFrom.toISOString(),
    effective_to: o.effectiveTo?.toISOString() ?? null,
    created_at: o.createdAt.toISOString(),
  };
}

export function auditJson(e: AuditRecord) {
  return {
    id: e.id,
    at: e.at.toISOString(),
    actor_key_id: e.actorKeyId,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    before: e.before,
    after: e.after,
    request_id: e.requestId,
  };
}
