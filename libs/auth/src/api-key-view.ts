import type { ApiKeyRecord } from '@tokenmeter/db';
import type { Role } from './roles';

/** What may be shown about a key: never its secret or hash. */
export type ApiKeyView = Omit<ApiKeyRecord, 'secretHash'>;

export function viewOf(record: ApiKeyRecord): ApiKeyView {
  const { secretHash: _secretHash, ...view } = record;
  return view;
}

/**
 * A key as the API answers it and as the audit log records it. The API documents the same shape
 * as a zod schema (apps/api/src/auth/api-key-json.ts), which fails to compile if the two disagree.
 */
export interface ApiKeyJson {
  id: string;
  prefix: string;
  role: Role;
  account_id: string | null;
  name: string | null;
  created_by_key_id: string | null;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function apiKeyJson(k: ApiKeyView): ApiKeyJson {
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
