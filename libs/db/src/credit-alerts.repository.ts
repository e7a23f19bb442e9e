import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/**
 * credit_alerts (the outbox of credits_low / credits_exhausted) and credit_alert_fundings (the
 * baseline of each funding), docs/credits.md "Credit alerts". The notifier's CreditAlertsWatcher
 * writes both; the AlertsDispatcher claims and publishes the alerts like budget alerts.
 */
export interface NewCreditAlert {
  accountId: string;
  kind: 'low' | 'exhausted';
  fundingGrantId: string;
  /** Exact decimal text. */
  thresholdPct: string;
  availableUsd: string;
  fundedUsd: string;
}

/** An unpublished credit alert, claimed by the dispatcher (decimals as exact strings). */
export interface UnpublishedCreditAlertRow extends NewCreditAlert {
  id: string;
  createdAt: Date;
}

export class CreditAlertsRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * The account's latest funding: the grant of its newest `grant` ledger entry (written when a
   * grant becomes active, at creation or when its top-up is paid). undefined: never funded.
   */
  async latestFunding(accountId: string, q: Queryable = this.pool): Promise<string | undefined> {
    const { rows } = await q.query(
      `SELECT grant_id FROM credit_ledger_entries WHERE account_id = $1 AND kind = 'grant' ORDER BY id DESC LIMIT 1`,
      [accountId],
    );
    return rows[0]?.grant_id;
  }

  /**
   * The baseline of a funding: `fundedUsd` if this is the first record of it, else the one
   * recorded first (by this or another watcher), so every watcher compares with the same amount.
   * Two statements: the read must see a row another transaction committed while the insert waited.
   */
  async fundingBaseline(accountId: string, fundingGrantId: string, fundedUsd: string, q: Queryable = this.pool): Promise<string> {
    await q.query(
      `INSERT INTO credit_alert_fundings (funding_grant_id, account_id, funded_usd) VALUES ($1, $2, $3::numeric)
       ON CONFLICT (funding_grant_id) DO NOTHING`,
      [fundingGrantId, accountId, fundedUsd],
    );
    const { rows } = await q.query(`SELECT funded_usd::text AS funded_usd FROM credit_alert_fundings WHERE funding_grant_id = $1`, [fundingGrantId]);
    return rows[0].funded_usd;
  }

  /**
   * Records the alerts not recorded yet (the unique key: account, funding, kind, threshold) and,
   * when any is new, NOTIFYs tokenmeter_alerts in the same statement (the dispatchers wake).
   * Returns the ids of the new ones.
   */
  async insertAlerts(alerts: readonly NewCreditAlert[], q: Queryable = this.pool): Promise<string[]> {
    if (alerts.length === 0) return [];
    const { rows } = await q.query(
      `WITH inserted AS (
         INSERT INTO credit_alerts (account_id, kind, funding_grant_id, threshold_pct, available_usd, funded_usd)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[])
         ON CONFLICT (account_id, funding_grant_id, kind, threshold_pct) DO NOTHING
         RETURNING id
       )
       SELECT id::text AS id, (SELECT count(*) FROM (SELECT pg_notify('tokenmeter_alerts', '') WHERE EXISTS (SELECT 1 FROM inserted)) n) AS woken
         FROM inserted`,
      [
        alerts.map((a) => a.accountId),
        alerts.map((a) => a.kind),
        alerts.map((a) => a.fundingGrantId),
        alerts.map((a) => a.thresholdPct),
        alerts.map((a) => a.availableUsd),
        alerts.map((a) => a.fundedUsd),
      ],
    );
    return rows.map((r) => r.id);
  }

  /** Accounts that have a grant that is active and not expired (the watcher looks at them after every LISTEN). */
  async accountsWithLiveGrants(q: Queryable = this.pool): Promise<string[]> {
    const { rows } = await q.query(
      `SELECT DISTINCT account_id FROM credit_grants WHERE status = 'active' AND (expires_at IS NULL OR expires_at > now()) ORDER BY account_id`,
    );
    return rows.map((r) => r.account_id);
  }

  /** The oldest unpublished credit alerts, locked until `q`'s transaction ends (SKIP LOCKED, as budget alerts). */
  async claimUnpublished(limit: number, q: Queryable): Promise<UnpublishedCreditAlertRow[]> {
    const { rows } = await q.query(
      `SELECT id::text AS id, account_id, kind, funding_grant_id, threshold_pct::text AS threshold_pct,
              available_usd::text AS available_usd, funded_usd::text AS funded_usd, created_at
         FROM credit_alerts
        WHERE published_at IS NULL
        ORDER BY id
        LIMIT $1
          FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    return rows.map((r) => ({
      id: r.id,
      accountId: r.account_id,
      kind: r.kind,
      fundingGrantId: r.funding_grant_id,
      thresholdPct: r.threshold_pct,
      availableUsd: r.available_usd,
      fundedUsd: r.funded_usd,
      createdAt: r.created_at,
    }));
  }

  /** Marks claimed credit alerts published, in the claim's transaction. */
  async markPublished(ids: readonly string[], q: Queryable): Promise<void> {
    if (ids.length === 0) return;
    await q.query('UPDATE credit_alerts SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL', [ids]);
  }
}
