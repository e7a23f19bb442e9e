import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/** api_keys.role (a Postgres enum). What each role may do is decided in apps/api/src/auth/principal.ts. */
export type ApiKeyRole = 'admin' | 'auditor' | 'account';

export interface ApiKeyRecord {
  id: string;
  prefix: string;
  /** sha256 hex of the whole key. The key itself is never stored. */
  secretHash: string;
  role: ApiKeyRole;
  accountId: string | null;
  name: string | null;
  createdByKeyId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export type NewApiKey = Pick<ApiKeyRecord, 'id' | 'prefix' | 'secretHash' | 'role' | 'accountId' | 'name' | 'createdByKeyId'>;

const COLUMNS = 'id, prefix, secret_hash, role, account_id, name, created_by_key_id, created_at, revoked_at, last_used_at';

export class ApiKeysRepository {
  constructor(private readonly pool: Pool) {}

  /** undefined when the prefix is taken (for the bootstrap key: it already exists). */
  async createApiKey(k: NewApiKey, q: Queryable = this.pool): Promise<ApiKeyRecord | undefined> {
    const { rows } = await q.query(
      `INSERT INTO api_keys (id, prefix, secret_hash, role, account_id, name, created_by_key_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (prefix) DO NOTHING RETURNING ${COLUMNS}`,
      [k.id, k.prefix, k.secretHash, k.role, k.accountId, k.name, k.createdByKeyId],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** The prefix is unique and indexed: authentication looks a key up by it, then compares hashes. */
  async getApiKeyByPrefix(prefix: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.pool.query(`SELECT ${COLUMNS} FROM api_keys WHERE prefix = $1`, [prefix]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async getApiKey(id: string, q: Queryable = this.pool, forUpdate = false): Promise<ApiKeyRecord | undefined> {
    const { rows } = await q.query(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Newest first; `before` is the previous page's last (created_at, id). */
  async listApiKeys(filter: { accountId?: string; limit: number; before?: { createdAt: Date; id: string } }): Promise<ApiKeyRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT ${COLUMNS} FROM api_keys
       WHERE ($1::text IS NULL OR account_id = $1)
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [filter.accountId ?? null, filter.before?.createdAt.toISOString() ?? null, filter.before?.id ?? null, filter.limit],
    );
    return rows.map(toRecord);
  }

  /** Idempotent: a revoked key keeps its first revocation time. */
  async revokeApiKey(id: string, q: Queryable = this.pool): Promise<ApiKeyRecord | undefined> {
    const { rows } = await q.query(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async recordUse(id: string, at: Date): Promise<void> {
    await this.pool.query('UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)', [
      id,
      at.toISOString(),
    ]);
  }
}

function toRecord(r: Record<string, any>): ApiKeyRecord {
  return {
    id: r.id,
    prefix: r.prefix,
    secretHash: r.secret_hash,
    role: r.role,
    accountId: r.account_id,
    name: r.name,
    createdByKeyId: r.created_by_key_id,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}
