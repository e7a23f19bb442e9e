import type { ApiKeyRecord } from '@tokenmeter/db';

/** A key as the API shows it (and as the audit log records it): never its secret or hash. */
export function apiKeyJson(k: Omit<ApiKeyRecord, 'secretHash'>) {
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
