import type { Pool } from 'pg';
import type { BudgetAlert } from './generated/prisma/client';
import { prismaFor, type Queryable } from './transactor';

/**
 * budget_alerts, the outbox side (docs/limits.md "Alerts"). The rows are inserted by
 * budget-spend.repository.ts in the transaction that crossed the threshold; this repository claims
 * them for the notifier, marks them published, and lists them for admins.
 */

/** An unpublished alert with its budget's scope, claimed by the dispatcher (decimals as exact strings). */
export interface UnpublishedAlertRow {
  id: string;
  budgetId: string;
  accountId: string;
  apiKeyId: string | null;
  model: string | null;
  window: 'day' | 'month' | 'total';
  windowStart: Date;
  thresholdPct: string;
  direction: 'up' | 'down';
  spendUsd: string;
  limitUsd: string;
  enforce: 'hard' | 'soft';
  createdAt: Date;
}

export interface BudgetAlertRecord {
  id: string;
  budgetId: string;
  accountId: string;
  windowStart: Date;
  thresholdPct: string;
  direction: 'up' | 'down';
  spendUsd: string;
  limitUsd: string;
  createdAt: Date;
  publishedAt: Date | null;
}

export interface BudgetAlertListFilter {
  accountId?: string;
  /** Exclusive: alerts with a smaller id (the previous page's last id). */
  beforeId?: string;
  limit: number;
}

export class BudgetAlertsRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * The oldest unpublished alerts, locked until `q`'s transaction ends. SKIP LOCKED: several
   * notifiers each take a different batch instead of queueing behind one another, and a
   * notifier that dies releases its batch (its transaction rolls back) for the next claim.
   */
  async claimUnpublished(limit: number, q: Queryable): Promise<UnpublishedAlertRow[]> {
    const { rows } = await q.query(
      `SELECT a.id::text AS id, a.budget_id, a.account_id, b.api_key_id, b.model, b.time_window, a.window_start,
              a.threshold_pct::text AS threshold_pct, a.direction, a.spend_usd::text AS spend_usd, a.limit_usd::text AS limit_usd,
              b.enforce, a.created_at
         FROM budget_alerts a
         JOIN budgets b ON b.id = a.budget_id
        WHERE a.published_at IS NULL
        ORDER BY a.id
        LIMIT $1
          FOR UPDATE OF a SKIP LOCKED`,
      [limit],
    );
    return rows.map((r) => ({
      id: r.id,
      budgetId: r.budget_id,
      accountId: r.account_id,
      apiKeyId: r.api_key_id,
      model: r.model,
      window: r.time_window,
      windowStart: r.window_start,
      thresholdPct: r.threshold_pct,
      direction: r.direction,
      spendUsd: r.spend_usd,
      limitUsd: r.limit_usd,
      enforce: r.enforce,
      createdAt: r.created_at,
    }));
  }

  /** Marks claimed alerts published, in the claim's transaction. */
  async markPublished(ids: readonly string[], q: Queryable): Promise<void> {
    await q.query('UPDATE budget_alerts SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL', [ids]);
  }

  /** Newest first, keyset-paginated by id (Prisma). */
  async listAlerts(filter: BudgetAlertListFilter): Promise<BudgetAlertRecord[]> {
    const rows = await prismaFor(this.pool, this.pool).budgetAlert.findMany({
      where: { accountId: filter.accountId, id: filter.beforeId === undefined ? undefined : { lt: BigInt(filter.beforeId) } },
      orderBy: { id: 'desc' },
      take: filter.limit,
    });
    return rows.map(alertRecordOf);
  }
}

function alertRecordOf(r: BudgetAlert): BudgetAlertRecord {
  return {
    id: r.id.toString(),
    budgetId: r.budgetId,
    accountId: r.accountId,
    windowStart: r.windowStart,
    // toFixed() with no argument: every digit, never the exponent form of toString (1e-8).
    thresholdPct: r.thresholdPct.toFixed(),
    direction: r.direction as BudgetAlertRecord['direction'],
    spendUsd: r.spendUsd.toFixed(),
    limitUsd: r.limitUsd.toFixed(),
    createdAt: r.createdAt,
    publishedAt: r.publishedAt,
  };
}
