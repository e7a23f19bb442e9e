import type { Pool } from 'pg';
import type { Queryable } from './transactor';

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

/** The audit trail. Append-only: the table has a trigger refusing UPDATE and DELETE. */
export class AuditLogRepository {
  constructor(private readonly pool: Pool) {}

  /** Call with the client of the write's own transaction, so both commit or neither does. */
  async append(entry: AuditEntry, q: Queryable = this.pool): Promise<void> {
    await q.query(
      `INSERT INTO audit_log (actor_key_id, action, target_type, target_id, before, after, request_id)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)`,
      [
        entry.actorKeyId,
        entry.action,
        entry.targetType,
        entry.targetId,
        entry.before === undefined || entry.before === null ? null : JSON.stringify(entry.before),
        entry.after === undefined || entry.after === null ? null : JSON.stringify(entry.after),
        entry.requestId,
      ],
    );
  }

  /** Newest first (by id, which follows commit order closely enough for a trail). */
  async listEntries(filter: AuditListFilter): Promise<AuditRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT id::text, at, actor_key_id, action, target_type, target_id, before, after, request_id
       FROM audit_log
       WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target_id = $3)
       ORDER BY audit_log.id DESC
       LIMIT $4`,
      [filter.beforeId ?? null, filter.action ?? null, filter.targetId ?? null, filter.limit],
    );
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      actorKeyId: r.actor_key_id,
      action: r.action,
      targetType: r.target_type,
      targetId: r.target_id,
      before: r.before,
      after: r.after,
      requestId: r.request_id,
    }));
  }
}
