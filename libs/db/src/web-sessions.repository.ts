import type { Pool } from 'pg';
import type { ApiKeyRole } from './api-keys.repository';
import type { Queryable } from './transactor';

/** A signed-in browser of the web dashboard (web_sessions). */
export interface WebSessionRecord {
  id: string;
  role: ApiKeyRole;
  accountId: string | null;
  /** The API key that signed in; null when a dashboard link did. */
  keyId: string | null;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
}

export type NewWebSession = Omit<WebSessionRecord, 'createdAt'> & { tokenHash: string };

const COLUMNS = 'id, role, account_id, key_id, csrf_token, created_at, expires_at';

export class WebSessionsRepository {
  constructor(private readonly pool: Pool) {}

  async createWebSession(s: NewWebSession, q: Queryable = this.pool): Promise<WebSessionRecord> {
    const { rows } = await q.query(
      `INSERT INTO web_sessions (id, token_hash, role, account_id, key_id, csrf_token, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [s.id, s.tokenHash, s.role, s.accountId, s.keyId, s.csrfToken, s.expiresAt],
    );
    return toRecord(rows[0]);
  }

  /** The live session with this token hash: not ended, not expired (by the database clock). */
  async getLiveWebSession(tokenHash: string): Promise<WebSessionRecord | undefined> {
    const { rows } = await this.pool.query(
      `SELECT ${COLUMNS} FROM web_sessions WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > now()`,
      [tokenHash],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async endWebSession(tokenHash: string): Promise<void> {
    await this.pool.query('UPDATE web_sessions SET ended_at = now() WHERE token_hash = $1 AND ended_at IS NULL', [tokenHash]);
  }

  /** Ends every session a key started (when the key is revoked, its sessions go with it). */
  async endWebSessionsOfKey(keyId: string, q: Queryable = this.pool): Promise<number> {
    const { rowCount } = await q.query('UPDATE web_sessions SET ended_at = now() WHERE key_id = $1 AND ended_at IS NULL', [keyId]);
    return rowCount ?? 0;
  }
}

function toRecord(r: Record<string, unknown>): WebSessionRecord {
  return {
    id: r.id as string,
    role: r.role as ApiKeyRole,
    accountId: (r.account_id as string | null) ?? null,
    keyId: (r.key_id as string | null) ?? null,
    csrfToken: r.csrf_token as string,
    createdAt: r.created_at as Date,
    expiresAt: r.expires_at as Date,
  };
}
