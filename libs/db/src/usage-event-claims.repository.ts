import type { Pool } from 'pg';
import type { BillingPeriod } from '@tokenmeter/billing';
import type { Queryable } from './transactor';

/** Claimed usage of one invoice, summed per (model, price version, override, service period). */
export interface ClaimedUsageRow {
  model: string;
  servicePeriod: string;
  priceOverrideKind: string | null;
  discountPercent: string | null;
  tokens: { input: string; output: string; cacheRead: string; cacheWrite: string };
  costUsd: { input: string; output: string; cacheRead: string; cacheWrite: string };
  /** Rates from the price version: USD per 1M tokens. cacheWrite null = input rate. */
  listRates: { input: string; output: string; cacheRead: string; cacheWrite: string | null };
  /** Rates from a rate-card override, when one priced these events. */
  cardRates: { input: string | null; output: string | null; cacheRead: string | null; cacheWrite: string | null } | null;
}

/**
 * usage_events.invoice_id: which invoice billed each event. Only the close run writes it, inside
 * its (account, period) invoice transaction (InvoicesRepository.withInvoiceLock); reprice leaves
 * claimed events alone.
 */
export class UsageEventClaimsRepository {
  constructor(private readonly pool: Pool) {}

  /** Accounts with priced usage before `end` that no invoice has claimed yet (late months included). */
  async listAccountsWithUnbilledUsage(end: Date, accountId?: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ account_id: string }>(
      `SELECT DISTINCT account_id FROM usage_events
       WHERE invoice_id IS NULL AND cost_usd IS NOT NULL AND occurred_at < $1 AND ($2::text IS NULL OR account_id = $2)`,
      [end, accountId ?? null],
    );
    return rows.map((r) => r.account_id);
  }

  /**
   * Whether priced usage no invoice has claimed remains in [from, to) (of `models`; empty: any):
   * what a grant expiring at `to` could still have to pay for (InvoiceCredits' expiry rule).
   */
  async hasUnbilledUsage(q: Queryable, accountId: string, range: { from: Date; to: Date; models: readonly string[] }): Promise<boolean> {
    const { rows } = await q.query<{ found: boolean }>(
      `SELECT EXISTS (
         SELECT 1 FROM usage_events
         WHERE account_id = $1 AND invoice_id IS NULL AND cost_usd IS NOT NULL AND occurred_at >= $2 AND occurred_at < $3
           AND (cardinality($4::text[]) = 0 OR model = ANY($4::text[]))) AS found`,
      [accountId, range.from, range.to, [...range.models]],
    );
    return rows[0].found;
  }

  /**
   * Claims the account's unbilled, priced events for this invoice: those of the period, plus
   * late events of earlier months whose own month has no draft invoice (a draft would take them
   * on its next close run; anything else there is final). Setting invoice_id under the row lock
   * of the UPDATE is what makes every event billed exactly once, even with concurrent closes.
   * Unpriced events (no price in force yet) stay unclaimed until reprice prices them.
   */
  async claimForInvoice(q: Queryable, accountId: string, bounds: BillingPeriod, invoiceId: string): Promise<number> {
    const { rowCount } = await q.query(
      `UPDATE usage_events e SET invoice_id = $2
       WHERE e.account_id = $1 AND e.invoice_id IS NULL AND e.cost_usd IS NOT NULL AND e.occurred_at < $4
         AND (e.occurred_at >= $3 OR NOT EXISTS (
           SELECT 1 FROM invoices d
           WHERE d.account_id = e.account_id AND d.status = 'draft'
             AND d.period = to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')))`,
      [accountId, invoiceId, bounds.start, bounds.end],
    );
    return rowCount ?? 0;
  }

  /** The invoice's claimed usage, summed per (model, price version, override, service period). */
  async listClaimedUsage(q: Queryable, accountId: string, invoiceId: string): Promise<ClaimedUsageRow[]> {
    const { rows } = await q.query(CLAIMED_USAGE_SQL, [accountId, invoiceId]);
    return rows.map((r) => ({
      model: r.model,
      servicePeriod: r.service_period,
      priceOverrideKind: r.override_kind,
      discountPercent: r.discount_percent,
      tokens: { input: r.input_tokens, output: r.output_tokens, cacheRead: r.cache_read_tokens, cacheWrite: r.cache_write_tokens },
      costUsd: { input: r.input_cost, output: r.output_cost, cacheRead: r.cache_read_cost, cacheWrite: r.cache_write_cost },
      listRates: { input: r.v_input, output: r.v_output, cacheRead: r.v_cache_read, cacheWrite: r.v_cache_write },
      cardRates:
        r.override_kind === 'rate_card'
          ? { input: r.o_input, output: r.o_output, cacheRead: r.o_cache_read, cacheWrite: r.o_cache_write }
          : null,
    }));
  }
}

const CLAIMED_USAGE_SQL = `
WITH ev AS (
  SELECT e.model, e.price_version_id, e.price_override_id,
         to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') AS service_period,
         sum(e.input_tokens) AS input_tokens, sum(e.output_tokens) AS output_tokens,
         sum(e.cache_read_tokens) AS cache_read_tokens, sum(e.cache_write_tokens) AS cache_write_tokens,
         sum(e.input_cost_usd) AS input_cost, sum(e.output_cost_usd) AS output_cost,
         sum(e.cache_read_cost_usd) AS cache_read_cost, sum(e.cache_write_cost_usd) AS cache_write_cost
  FROM usage_events e
  WHERE e.account_id = $1 AND e.invoice_id = $2
  GROUP BY 1, 2, 3, 4
)
SELECT ev.model, ev.service_period,
       ev.input_tokens::text, ev.output_tokens::text, ev.cache_read_tokens::text, ev.cache_write_tokens::text,
       ev.input_cost::text, ev.output_cost::text, ev.cache_read_cost::text, ev.cache_write_cost::text,
       v.input_per_mtok::text AS v_input, v.output_per_mtok::text AS v_output,
       v.cache_read_per_mtok::text AS v_cache_read, v.cache_write_per_mtok::text AS v_cache_write,
       o.kind AS override_kind, o.discount_percent::text AS discount_percent,
       o.input_per_mtok::text AS o_input, o.output_per_mtok::text AS o_output,
       o.cache_read_per_mtok::text AS o_cache_read, o.cache_write_per_mtok::text AS o_cache_write
FROM ev
JOIN price_versions v ON v.id = ev.price_version_id
LEFT JOIN account_price_overrides o ON o.id = ev.price_override_id
ORDER BY ev.service_period, ev.model, ev.price_version_id, ev.price_override_id`;
