import type { Pool } from 'pg';
import type { ApiKeyRole } from './api-keys.repository';
import { prismaFor, type Queryable } from './transactor';

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

const SELECT = { id: true, role: true, accountId: true, keyId: true, csrfToken: true, createdAt: true, expiresAt: true } as const;

/**
 * Web sessions (Prisma). Liveness is judged by the database clock (`now()`), as the sessions'
 * expiry is written by it too: those statements are raw SQL on the same Prisma client.
 */
export class WebSessionsRepository {
  constructor(private readonly pool: Pool) {}

  async createWebSession(s: NewWebSession, q: Queryable = this.pool): Promise<WebSessionRecord> {
    return prismaFor(this.pool, q).webSession.create({
      data: { id: s.id, tokenHash: s.tokenHash, role: s.role, accountId: s.accountId, keyId: s.keyId, csrfToken: s.csrfToken, expiresAt: s.expiresAt },
      select: SELECT,
    });
  }

  /** The live session with this token hash: not ended, not expired (by the database clock). */
  async getLiveWebSession(tokenHash: string): Promise<WebSessionRecord | undefined> {
    const [row] = await prismaFor(this.pool, this.pool).$queryRaw<WebSessionRecord[]>`
      SELECT id, role::text AS role, account_id AS "accountId", key_id AS "keyId", csrf_token AS "csrfToken",
             created_at AS "createdAt", expires_at AS "expiresAt"
      FROM web_sessions WHERE token_hash = ${tokenHash} AND ended_at IS NULL AND expires_at > now()`;
    return row;
  }

  async endWebSession(tokenHash: string): Promise<void> {
    await prismaFor(this.pool, this.pool).$executeRaw`UPDATE web_sessions SET ended_at = now() WHERE token_hash = ${tokenHash} AND ended_at IS NULL`;
  }

  /** Ends every session a key started (when the key is revoked, its sessions go with it). */
  async endWebSessionsOfKey(keyId: string, q: Queryable = this.pool): Promise<number> {
    return prismaFor(this.pool, q).$executeRaw`UPDATE web_sessions SET ended_at = now() WHERE key_id = ${keyId} AND ended_at IS NULL`;
  }
}
