import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/** A one-time sign-in link to one account's dashboard (dashboard_links). */
export interface DashboardLinkRecord {
  id: string;
  accountId: string;
  createdByKeyId: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

const COLUMNS = 'id, account_id, created_by_key_id, created_at, expires_at, used_at';

export class DashboardLinksRepository {
  constructor(private readonly pool: Pool) {}

  async createDashboardLink(
    link: { id: string; tokenHash: string; accountId: string; createdByKeyId: string | null; expiresAt: Date },
    q: Queryable = this.pool,
  ): Promise<DashboardLinkRecord> {
    const { rows } = await q.query(
      `INSERT INTO dashboard_links (id, token_hash, account_id, created_by_key_id, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [link.id, link.tokenHash, link.accountId, link.createdByKeyId, link.expiresAt],
    );
    return toRecord(rows[0]);
  }

  /**
   * Marks the link used and returns it, in one statement: of two browsers opening the same link at
   * once, exactly one gets the row. undefined when unknown, already used or expired.
   */
  async consumeDashboardLink(tokenHash: string, q: Queryable = this.pool): Promise<DashboardLinkRecord | undefined> {
    const { rows } = await q.query(
      `UPDATE dashboard_links SET used_at = now()
       WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING ${COLUMNS}`,
      [tokenHash],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }
}

function toRecord(r: Record<string, unknown>): DashboardLinkRecord {
  return {
    id: r.id as string,
    accountId: r.account_id as string,
    createdByKeyId: (r.created_by_key_id as string | null) ?? null,
    createdAt: r.created_at as Date,
    expiresAt: r.expires_at as Date,
    usedAt: (r.used_at as Date | null) ?? null,
  };
}
