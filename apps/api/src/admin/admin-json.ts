import { z } from 'zod';
import { usd } from '@tokenmeter/billing';
import type { AccountRecord, AuditRecord, PriceOverrideRecord } from '@tokenmeter/db';
import { type ModelJson as ModelJsonOfBuilder, modelJson, type PriceVersionJson as PriceVersionJsonOfBuilder, priceVersionJson } from '@tokenmeter/prices';
import { dateTime, LIST_RATES, listOf, OVERRIDE_TERMS, pageOf, type Same } from '../common/response-fields';

// The admin API's JSON (snake_case, decimals as strings without trailing zeros, RFC 3339 UTC).
// Audit entries record the same representation, so before/after read like the API. Each shape is
// a zod schema, documented by ApiAnswer; each builder returns `z.input` of its schema.

const dec = (x: string | null): string | null => (x === null ? null : usd(x).toString());

export const AccountSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable().describe('null for an account first seen in usage and not named yet'),
    email: z.string().nullable(),
    spend_fail_mode: z.enum(['open', 'closed']).describe('What the gateway does with this account when Tokenmeter is unreachable: open (allow) or closed (deny)'),
    prepaid_only: z.boolean().describe('Usage must be covered by credits: /v1/spend/authorize denies (402 credits_exhausted) once they run out'),
    created_at: dateTime,
    updated_at: dateTime,
  })
  .strict();
export type AccountJson = z.input<typeof AccountSchema>;
export const AccountPageSchema = pageOf(AccountSchema);
export type AccountPageJson = z.input<typeof AccountPageSchema>;

export function accountJson(a: AccountRecord): AccountJson {
  return {
    id: a.id,
    name: a.name,
    email: a.email,
    spend_fail_mode: a.spendFailMode === 'closed' ? 'closed' : 'open',
    prepaid_only: a.prepaidOnly,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

export const PriceVersionSchema = z
  .object({
    id: z.string(),
    model_id: z.string(),
    effective_from: dateTime,
    ...LIST_RATES,
  })
  .strict();
export type PriceVersionJson = z.input<typeof PriceVersionSchema>;

export const ModelSchema = z
  .object({
    id: z.string(),
    display_name: z.string().nullable(),
    provider: z.string().nullable(),
    context_window: z.number().int().positive().nullable().describe('Tokens; usage above it is flagged exceeds_context_window'),
    max_output_tokens: z.number().int().positive().nullable().describe('Tokens; usage above it is flagged exceeds_max_output'),
    created_at: dateTime,
    prices: z.array(PriceVersionSchema).describe('Its price versions, oldest first'),
  })
  .strict();
export type ModelJson = z.input<typeof ModelSchema>;
export const ModelListSchema = listOf(ModelSchema);

// The builders live in @tokenmeter/prices (the CLI's import audits the same shapes); these keep
// them and the documented schemas equal.
const buildersMatchSchemas: [Same<PriceVersionJsonOfBuilder, PriceVersionJson>, Same<ModelJsonOfBuilder, ModelJson>] = [true, true];
void buildersMatchSchemas;
export { modelJson, priceVersionJson };

export const PriceOverrideSchema = z
  .object({
    id: z.string(),
    account_id: z.string(),
    kind: z.enum(['rate_card', 'discount']),
    model_id: z.string().nullable().describe('null: every model (discounts only)'),
    discount_percent: z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .nullable()
      .describe('Discounts only: a percentage in (0, 100] as a decimal string, e.g. "12.5"'),
    ...OVERRIDE_TERMS,
    created_at: dateTime,
  })
  .strict();
export type PriceOverrideJson = z.input<typeof PriceOverrideSchema>;
export const PriceOverrideListSchema = listOf(PriceOverrideSchema);

export function priceOverrideJson(o: PriceOverrideRecord): PriceOverrideJson {
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

export const AuditEntrySchema = z
  .object({
    id: z.string(),
    at: dateTime,
    actor_key_id: z.string().nullable().describe('null: the CLI or the start-up bootstrap'),
    action: z.string().describe('<entity>.<verb>, e.g. account.update, api_key.revoke'),
    target_type: z.string().describe('e.g. account, api_key, invoice'),
    target_id: z.string(),
    before: z.unknown().describe('The target as the API showed it before the change (JSON; null for a creation)'),
    after: z.unknown().describe('The target after the change (JSON)'),
    request_id: z.string().nullable(),
  })
  .strict();
export type AuditEntryJson = z.input<typeof AuditEntrySchema>;
export const AuditPageSchema = pageOf(AuditEntrySchema);

export function auditJson(e: AuditRecord): AuditEntryJson {
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
