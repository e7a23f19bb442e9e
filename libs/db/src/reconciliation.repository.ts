import type { Pool } from 'pg';
import type { BillingPeriod, InvoiceStatus } from '@tokenmeter/billing';

export interface ReconciliationRow {
  accountId: string;
  rawEvents: string;
  rawCostUsd: string;
  rollupRequests: string;
  rollupCostUsd: string;
  /** The same two from the day rollups (usage_daily) and the month rollups (usage_monthly), which must equal the hourly ones. */
  dailyRequests: string;
  dailyCostUsd: string;
  monthlyRequests: string;
  monthlyCostUsd: string;
  /** Priced events of the period not claimed by any invoice yet (late arrivals waiting). */
  unbilledCostUsd: string;
  unpricedEvents: string;
  invoiceId: string | null;
  invoiceStatus: InvoiceStatus | null;
  invoiceTotalExactUsd: string | null;
  invoiceTotalMinor: string | null;
  invoiceLinesExactUsd: string | null;
  invoiceLinesMinor: string | null;
  /** Sum of the stored costs of the events the invoice claimed. */
  invoiceClaimedCostUsd: string | null;
  /** Its credit lines (token_type credit): exact sum and cents (negative). */
  invoiceCreditExactUsd: string | null;
  invoiceCreditMinor: string | null;
  /** Its credit ledger entries, consumption + reversals, signed (consumption is negative). */
  invoiceLedgerCreditUsd: string | null;
  stripeInvoiceId: string | null;
  stripeTotalMinor: string | null;
}

/**
 * The reconciliation report's one read: per account, raw events against rollups, and each
 * invoice against its lines, the events it claimed and its credit ledger entries. Reads every billing table, owns none.
 */
export class ReconciliationRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Per account with usage or an invoice in the period: raw event totals, rollup totals (hourly,
   * daily and monthly), what is still unbilled, and the invoice's own totals three ways (header, lines,
   * claimed events), and its credit lines against its credit ledger entries.
   */
  async reconcile(bounds: BillingPeriod, accountId?: string): Promise<ReconciliationRow[]> {
    const { rows } = await this.pool.query<ReconciliationRow>(RECONCILE_SQL, [bounds.start, bounds.end, bounds.period, accountId ?? null]);
    return rows;
  }
}

// Period membership uses [start, end) on occurred_at for events and on the hour, day or month for
// rollups: all are UTC-aligned and a billing period is a UTC calendar month, so all cut at the same
// instant. One CTE per rollup grain, named after its columns' prefix (rollupRequests, dailyRequests, ...).
const ROLLUP_GRAINS = [
  { name: 'rollup', table: 'usage_hourly', time: 'hour' },
  { name: 'daily', table: 'usage_daily', time: 'day' },
  { name: 'monthly', table: 'usage_monthly', time: 'month' },
] as const;

const RECONCILE_SQL = `
WITH raw AS (
  SELECT account_id, count(*) AS events, coalesce(sum(cost_usd), 0) AS cost,
         coalesce(sum(cost_usd) FILTER (WHERE invoice_id IS NULL), 0) AS unbilled,
         count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
  FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 AND ($4::text IS NULL OR account_id = $4)
  GROUP BY account_id
), ${ROLLUP_GRAINS.map(
  ({ name, table, time }) => `${name} AS (
  SELECT account_id, sum(requests) AS requests, sum(cost_usd) AS cost
  FROM ${table} WHERE ${time} >= $1 AND ${time} < $2 AND ($4::text IS NULL OR account_id = $4)
  GROUP BY account_id
)`,
).join(', ')}, inv AS (
  SELECT i.*,
    (SELECT coalesce(sum(amount_exact_usd), 0) FROM invoice_lines l WHERE l.invoice_id = i.id) AS lines_exact,
    (SELECT coalesce(sum(amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id) AS lines_minor,
    (SELECT coalesce(sum(cost_usd), 0) FROM usage_events e WHERE e.account_id = i.account_id AND e.invoice_id = i.id) AS claimed,
    (SELECT coalesce(sum(amount_exact_usd), 0) FROM invoice_lines l WHERE l.invoice_id = i.id AND l.token_type = 'credit') AS credit_exact,
    (SELECT coalesce(sum(amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id AND l.token_type = 'credit') AS credit_minor,
    (SELECT coalesce(sum(amount_usd), 0) FROM credit_ledger_entries c
     WHERE c.invoice_id = i.id AND c.kind IN ('consumption', 'reversal')) AS ledger_credit
  FROM invoices i WHERE i.period = $3 AND ($4::text IS NULL OR i.account_id = $4)
), accts AS (
  SELECT account_id FROM raw UNION ${ROLLUP_GRAINS.map(({ name }) => `SELECT account_id FROM ${name} UNION `).join('')}SELECT account_id FROM inv
)
SELECT a.account_id AS "accountId",
  coalesce(raw.events, 0)::text AS "rawEvents", coalesce(raw.cost, 0)::text AS "rawCostUsd",
  ${ROLLUP_GRAINS.map(({ name }) => `coalesce(${name}.requests, 0)::text AS "${name}Requests", coalesce(${name}.cost, 0)::text AS "${name}CostUsd",`).join('\n  ')}
  coalesce(raw.unbilled, 0)::text AS "unbilledCostUsd", coalesce(raw.unpriced, 0)::text AS "unpricedEvents",
  inv.id AS "invoiceId", inv.status AS "invoiceStatus", inv.total_exact_usd::text AS "invoiceTotalExactUsd",
  inv.total_minor::text AS "invoiceTotalMinor", inv.lines_exact::text AS "invoiceLinesExactUsd",
  inv.lines_minor::text AS "invoiceLinesMinor", inv.claimed::text AS "invoiceClaimedCostUsd",
  inv.credit_exact::text AS "invoiceCreditExactUsd", inv.credit_minor::text AS "invoiceCreditMinor",
  inv.ledger_credit::text AS "invoiceLedgerCreditUsd",
  inv.stripe_invoice_id AS "stripeInvoiceId", inv.stripe_total_minor::text AS "stripeTotalMinor"
FROM accts a
LEFT JOIN raw ON raw.account_id = a.account_id
${ROLLUP_GRAINS.map(({ name }) => `LEFT JOIN ${name} ON ${name}.account_id = a.account_id`).join('\n')}
LEFT JOIN inv ON inv.account_id = a.account_id
ORDER BY a.account_id`;
