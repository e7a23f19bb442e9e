import type { Pool } from 'pg';
import { jsonOrDbNull } from './prisma-values';
import { prismaFor, type Queryable } from './transactor';

export interface AuditEntry {
  /** The API key that made the change; null for the CLI and start-up bootstrap. */
  actorKeyId: string | null;
  /** `<entity>.<verb>`, e.g. 'account.create', 'api_key.revoke'. */
  action: string;
  targetType: string;
  targetId: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
}

export interface AuditRecord extends AuditEntry {
  id: string;
  at: Date;
}

export interface AuditListFilter {
  /** Exclusive: entries with a smaller id than this (the previous page's last id). */
  beforeId?: string;
  limit: number;
  action?: string;
  targetId?: string;
}

/**
 * The audit trail (Prisma). Append-only: the table has a trigger refusing UPDATE and DELETE.
 * before/after are SQL NULL when there is nothing (a create has no before), never JSON null.
 */
export class AuditLogRepository {
  constructor(private readonly pool: Pool) {}

  /** Call with the client of the write's own Transactor unit, so both commit or neither does. */
  async append(entry: AuditEntry, q: Queryable = this.pool): Promise<void> {
    // create, not createMany: Prisma caches the compiled plan of a create, never of a createMany.
    await prismaFor(this.pool, q).auditLog.create({
      data: {
        actorKeyId: entry.actorKeyId,
        action: entry.action,
        targetType: entry.targetType,
        targetId: entry.targetId,
        before: jsonOrDbNull(entry.before),
        after: jsonOrDbNull(entry.after),
        requestId: entry.requestId,
      },
      select: { id: true },
    });
  }

  /** Newest first (by id, which follows commit order closely enough for a trail). */
  async listEntries(filter: AuditListFilter): Promise<AuditRecord[]> {
    const rows = await prismaFor(this.pool, this.pool).auditLog.findMany({
      where: {
        id: filter.beforeId === undefined ? undefined : { lt: BigInt(filter.beforeId) },
        action: filter.action,
        targetId: filter.targetId,
      },
      orderBy: { id: 'desc' },
      take: filter.limit,
    });
    return rows.map((r) => ({
      id: r.id.toString(),
      at: r.at,
      actorKeyId: r.actorKeyId,
      action: r.action,
      targetType: r.targetType,
      targetId: r.targetId,
      before: r.before,
      after: r.after,
      requestId: r.requestId,
    }));
  }
}
