import type { Pool } from 'pg';
import { prismaFor, type Queryable } from './transactor';

/** A one-time sign-in link to one account's dashboard (dashboard_links). */
export interface DashboardLinkRecord {
  id: string;
  accountId: string;
  createdByKeyId: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

const SELECT = { id: true, accountId: true, createdByKeyId: true, createdAt: true, expiresAt: true, usedAt: true } as const;

/** Dashboard links (Prisma). Expiry is judged by the database clock, in raw SQL on the same client. */
export class DashboardLinksRepository {
  constructor(private readonly pool: Pool) {}

  async createDashboardLink(
    link: { id: string; tokenHash: string; accountId: string; createdByKeyId: string | null; expiresAt: Date },
    q: Queryable = this.pool,
  ): Promise<DashboardLinkRecord> {
    return prismaFor(this.pool, q).dashboardLink.create({
      data: { id: link.id, tokenHash: link.tokenHash, accountId: link.accountId, createdByKeyId: link.createdByKeyId, expiresAt: link.expiresAt },
      select: SELECT,
    });
  }

  /**
   * Marks the link used and returns it, in one statement: of two browsers opening the same link at
   * once, exactly one gets the row. undefined when unknown, already used or expired.
   */
  async consumeDashboardLink(tokenHash: string, q: Queryable = this.pool): Promise<DashboardLinkRecord | undefined> {
    const [row] = await prismaFor(this.pool, q).$queryRaw<DashboardLinkRecord[]>`
      UPDATE dashboard_links SET used_at = now()
      WHERE token_hash = ${tokenHash} AND used_at IS NULL AND expires_at > now()
      RETURNING id, account_id AS "accountId", created_by_key_id AS "createdByKeyId", created_at AS "createdAt",
                expires_at AS "expiresAt", used_at AS "usedAt"`;
    return row;
  }
}
