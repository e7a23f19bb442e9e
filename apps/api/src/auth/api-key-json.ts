import { z } from 'zod';
import type { ApiKeyRecord } from '@tokenmeter/db';
import { dateTime, pageOf } from '../common/response-fields';
import { ROLES } from './principal';

/** A key as the API shows it (and as the audit log records it): never its secret or hash. */
export const ApiKeySchema = z
  .object({
    id: z.string(),
    prefix: z.string().describe('Identifies the key in lists, logs and the audit log, e.g. tm_live_Xa81kPq0 (never enough to use it)'),
    role: z.enum(ROLES),
    account_id: z.string().nullable().describe('The account an account key reads; null for admin and auditor keys'),
    name: z.string().nullable(),
    created_by_key_id: z.string().nullable().describe('null: created by the CLI or the start-up bootstrap'),
    created_at: dateTime,
    revoked_at: dateTime.nullable(),
    last_used_at: dateTime.nullable().describe('Updated at most once a minute'),
  })
  .strict();
export type ApiKeyJson = z.input<typeof ApiKeySchema>;

/** POST /admin/api-keys: the key itself, shown this once (only its sha256 is stored). */
export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().describe('The API key itself, answered exactly once: store it now'),
}).strict();

export const ApiKeyPageSchema = pageOf(ApiKeySchema);

export function apiKeyJson(k: Omit<ApiKeyRecord, 'secretHash'>): ApiKeyJson {
  return {
    id: k.id,
    prefix: k.prefix,
    role: k.role,
    account_id: k.accountId,
    name: k.name,
    created_by_key_id: k.createdByKeyId,
    created_at: k.createdAt.toISOString(),
    revoked_at: k.revokedAt?.toISOString() ?? null,
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
  };
}
