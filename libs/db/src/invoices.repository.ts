import type { Pool, PoolClient } from 'pg';
import { Transactor, type Queryable } from './transactor';

/**
 * invoices, invoice_lines, usage_events.invoice_id (the claim), stripe_webhook_events, and the
 * Stripe ids on accounts. Amounts cross this boundary as exact decimal strings and bigint-safe
 * strings; the billing maths and the decisions stay in the invoicing services.
 */
export interface InvoiceRow {
  id: string;
  accountId: string;
  period: string;
  periodStart: Date;
  periodEnd: Date;
  status: string;
  currency: string;
  totalExactUsd: string;
  totalMinor: string;
  stripeCustomerId: string | null;
  stripeInvoiceId: string | null;
  hostedInvoiceUrl: string | null;
  stripeTotalMinor: string | null;
  syncError: string | null;
  syncAttempts: number;
  finalizedAt: Date | null;
  paidAt: Date | null;
  voidedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewInvoiceLine {
  lineKey: string;
  model: string;
  tokenType: string;
  servicePeriod: string;
  quantity: string;
  unitPricePerMTok: string;
  amountExactUsd: string;
  amountMinor: string;
  description: string;
}

/** A stored line: the new line plus its ids and, once pushed, its Stripe invoice item. */
export interface InvoiceLineRow extends NewInvoiceLine {
  id: string;
  invoiceId: string;
  stripeInvoiceItemId: string | null;
}

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

export interface PeriodBounds {
  period: string;
  start: Date;
  end: Date;
}

export interface ReconciliationRow {
  accountId: string;
  rawEvents: string;
  rawCostUsd: string;
  rollupRequests: string;
  rollupCostUsd: string;
  /** Priced events of the period not claimed by any invoice yet (late arrivals waiting). */
  unbilledCostUsd: string;
  unpricedEvents: string;
  invoiceId: string | null;
  invoiceStatus: string | null;
  invoiceTotalExactUsd: string | null;
  invoiceTotalMinor: string | null;
  invoiceLinesExactUsd: string | null;
  invoiceLinesMinor: string | null;
  /** Sum of the stored costs of the events the invoice claimed. */
  invoiceClaimedCostUsd: string | null;
  stripeInvoiceId: string | null;
  stripeTotalMinor: string | null;
}

const INVOICE_COLUMNS = `id, account_id AS "accountId", period, period_start AS "periodStart", period_end AS "periodEnd",
  status, currency, total_exact_usd::text AS "totalExactUsd", total_minor::text AS "totalMinor",
  stripe_customer_id AS "stripeCustomerId", stripe_invoice_id AS "stripeInvoiceId", hosted_invoice_url AS "hostedInvoiceUrl",
  stripe_total_minor::text AS "stripeTotalMinor", sync_error AS "syncError", sync_attempts AS "syncAttempts",
  finalized_at AS "finalizedAt", paid_at AS "paidAt", voided_at AS "voidedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

const LINE_COLUMNS = `id::text, invoice_id AS "invoiceId", line_key AS "lineKey", model, token_type AS "tokenType",
  service_period AS "servicePeriod", quantity::text, unit_price_per_mtok::text AS "unitPricePerMTok",
  amount_exact_usd::text AS "amountExactUsd", amount_minor::text AS "amountMinor", description,
  stripe_invoice_item_id AS "stripeInvoiceItemId"`;

/** A transaction holding the (account, period) invoice lock. Only exists inside withInvoiceLock. */
export class InvoiceCloseTx {
  constructor(
    private readonly client: PoolClient,
    readonly accountId: string,
    readonly bounds: PeriodBounds,
  ) {}

  async getInvoice(): Promise<InvoiceRow | undefined> {
    const { rows } = await this.client.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices WHERE account_id = $1 AND period = $2 FOR UPDATE`,
      [this.accountId, this.bounds.period],
    );
    return rows[0];
  }

  async createDraft(id: string): Promise<void> {
    await this.client.query(
      `INSERT INTO invoices (id, account_id, period, period_start, period_end, status, total_exact_usd, total_minor, updated_at)
       VALUES ($1, $2, $3, $4, $5, 'draft', 0, 0, now())`,
      [id, this.accountId, this.bounds.period, this.bounds.start, this.bounds.end],
    );
  }

  /**
   * Claims the account's unbilled, priced events for this invoice: those of the period, plus
   * late events of earlier months whose own month has no draft invoice (a draft would take them
   * on its next close run; anything else there is final). Setting invoice_id under the row lock
   * of the UPDATE is what makes every event billed exactly once, even with concurrent closes.
   * Unpriced events (no price in force yet) stay unclaimed until reprice prices them.
   */
  async claimEvents(invoiceId: string): Promise<number> {
    const { rowCount } = await this.client.query(
      `UPDATE usage_events e SET invoice_id = $2
       WHERE e.account_id = $1 AND e.invoice_id IS NULL AND e.cost_usd IS NOT NULL AND e.occurred_at < $4
         AND (e.occurred_at >= $3 OR NOT EXISTS (
           SELECT 1 FROM invoices d
           WHERE d.account_id = e.account_id AND d.status = 'draft'
             AND d.period = to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')))`,
      [this.accountId, invoiceId, this.bounds.start, this.bounds.end],
    );
    return rowCount ?? 0;
  }

  async listClaimedUsage(invoiceId: string): Promise<ClaimedUsageRow[]> {
    const { rows } = await this.client.query(CLAIMED_USAGE_SQL, [this.accountId, invoiceId]);
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

  /** Replaces a draft's lines and totals with a fresh computation. */
  async replaceLines(invoiceId: string, lines: NewInvoiceLine[], totalExactUsd: string, totalMinor: string): Promise<void> {
    await this.client.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [invoiceId]);
    if (lines.length > 0) {
      await this.client.query(
        `INSERT INTO invoice_lines (invoice_id, line_key, model, token_type, service_period, quantity, unit_price_per_mtok,
           amount_exact_usd, amount_minor, description)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::numeric[], $8::numeric[], $9::bigint[], $10::text[])`,
        [
          invoiceId,
          lines.map((l) => l.lineKey),
          lines.map((l) => l.model),
          lines.map((l) => l.tokenType),
          lines.map((l) => l.servicePeriod),
          lines.map((l) => l.quantity),
          lines.map((l) => l.unitPricePerMTok),
          lines.map((l) => l.amountExactUsd),
          lines.map((l) => l.amountMinor),
          lines.map((l) => l.description),
        ],
      );
    }
    await this.client.query(
      'UPDATE invoices SET total_exact_usd = $2, total_minor = $3, updated_at = now() WHERE id = $1',
      [invoiceId, totalExactUsd, totalMinor],
    );
  }
}

export class InvoicesRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Runs `fn` in one transaction holding a transaction-scoped advisory lock on (account, period),
   * so two close runs for the same invoice queue instead of racing; the unique (account_id,
   * period) index is the backstop. `commit: false` rolls back (dry runs).
   */
  async withInvoiceLock<T>(
    accountId: string,
    bounds: PeriodBounds,
    fn: (tx: InvoiceCloseTx) => Promise<{ result: T; commit: boolean }>,
  ): Promise<T> {
    return new Transactor(this.pool).runWithOutcome(async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('tokenmeter:invoice:' || $1 || ':' || $2, 0))`, [
        accountId,
        bounds.period,
      ]);
      return fn(new InvoiceCloseTx(client, accountId, bounds));
    });
  }

  /**
   * Accounts a close of `bounds` has work for: unbilled priced usage up to the period end
   * (including late usage of earlier months), or a draft for this period to refresh.
   */
  async listAccountsToClose(bounds: PeriodBounds, accountId?: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ account_id: string }>(
      `SELECT account_id FROM usage_events
       WHERE invoice_id IS NULL AND cost_usd IS NOT NULL AND occurred_at < $1 AND ($3::text IS NULL OR account_id = $3)
       UNION
       SELECT account_id FROM invoices WHERE period = $2 AND status = 'draft' AND ($3::text IS NULL OR account_id = $3)
       ORDER BY 1`,
      [bounds.end, bounds.period, accountId ?? null],
    );
    return rows.map((r) => r.account_id);
  }

  async getInvoice(id: string, q: Queryable = this.pool): Promise<InvoiceRow | undefined> {
    const { rows } = await q.query<InvoiceRow>(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id = $1`, [id]);
    return rows[0];
  }

  async getInvoiceByStripeId(stripeInvoiceId: string): Promise<InvoiceRow | undefined> {
    const { rows } = await this.pool.query<InvoiceRow>(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE stripe_invoice_id = $1`, [
      stripeInvoiceId,
    ]);
    return rows[0];
  }

  async listLines(invoiceId: string): Promise<InvoiceLineRow[]> {
    const { rows } = await this.pool.query<InvoiceLineRow>(
      `SELECT ${LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY id`,
      [invoiceId],
    );
    return rows;
  }

  async listInvoices(filter: { accountId?: string; period?: string; statuses?: string[]; limit?: number }): Promise<InvoiceRow[]> {
    const { rows } = await this.pool.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices
       WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR period = $2) AND ($3::text[] IS NULL OR status = ANY($3))
       ORDER BY period DESC, account_id, id LIMIT $4`,
      [filter.accountId ?? null, filter.period ?? null, filter.statuses ?? null, filter.limit ?? 1000],
    );
    return rows;
  }

  /** Compare-and-set on status: undefined when the invoice was not in one of `from`. */
  async transition(
    id: string,
    from: string[],
    to: string,
    set: { syncError?: string | null; finalizedAt?: boolean; paidAt?: boolean; voidedAt?: boolean } = {},
    q: Queryable = this.pool,
  ): Promise<InvoiceRow | undefined> {
    const { rows } = await q.query<InvoiceRow>(
      `UPDATE invoices SET status = $3,
         sync_error = CASE WHEN $4::boolean THEN $5 ELSE sync_error END,
         finalized_at = CASE WHEN $6::boolean THEN coalesce(finalized_at, now()) ELSE finalized_at END,
         paid_at = CASE WHEN $7::boolean THEN coalesce(paid_at, now()) ELSE paid_at END,
         voided_at = CASE WHEN $8::boolean THEN coalesce(voided_at, now()) ELSE voided_at END,
         updated_at = now()
       WHERE id = $1 AND status = ANY($2::text[])
       RETURNING ${INVOICE_COLUMNS}`,
      [id, from, to, set.syncError !== undefined, set.syncError ?? null, !!set.finalizedAt, !!set.paidAt, !!set.voidedAt],
    );
    return rows[0];
  }

  async recordSyncAttempt(id: string): Promise<void> {
    await this.pool.query('UPDATE invoices SET sync_attempts = sync_attempts + 1, updated_at = now() WHERE id = $1', [id]);
  }

  /**
   * Whether a push of another invoice of the account was ever attempted: it may have created the
   * account's Stripe customer and lost the answer before storing it.
   */
  async hasOtherSyncAttempts(accountId: string, exceptInvoiceId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ found: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM invoices WHERE account_id = $1 AND id <> $2 AND sync_attempts > 0) AS found',
      [accountId, exceptInvoiceId],
    );
    return rows[0].found;
  }

  async getAccountStripeCustomerId(accountId: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ stripe_customer_id: string | null }>(
      'SELECT stripe_customer_id FROM accounts WHERE id = $1',
      [accountId],
    );
    return rows[0]?.stripe_customer_id ?? null;
  }

  /** First writer wins; returns the stored id (a concurrent push got the same id from Stripe's idempotency). */
  async setAccountStripeCustomerId(accountId: string, customerId: string): Promise<string> {
    const { rows } = await this.pool.query<{ stripe_customer_id: string }>(
      `UPDATE accounts SET stripe_customer_id = coalesce(stripe_customer_id, $2), updated_at = now() WHERE id = $1
       RETURNING stripe_customer_id`,
      [accountId, customerId],
    );
    return rows[0]?.stripe_customer_id ?? customerId;
  }

  async getAccount(accountId: string): Promise<{ id: string; name: string | null; email: string | null } | undefined> {
    const { rows } = await this.pool.query('SELECT id, name, email FROM accounts WHERE id = $1', [accountId]);
    return rows[0];
  }

  async setStripeInvoice(id: string, stripeCustomerId: string, stripeInvoiceId: string): Promise<void> {
    await this.pool.query(
      `UPDATE invoices SET stripe_customer_id = $2, stripe_invoice_id = $3, updated_at = now() WHERE id = $1`,
      [id, stripeCustomerId, stripeInvoiceId],
    );
  }

  async setLineStripeItem(lineId: string, stripeInvoiceItemId: string): Promise<void> {
    await this.pool.query('UPDATE invoice_lines SET stripe_invoice_item_id = $2 WHERE id = $1', [lineId, stripeInvoiceItemId]);
  }

  /** The push's last step: the Stripe invoice is finalized; ours becomes immutable. */
  async markFinalized(
    id: string,
    hostedInvoiceUrl: string | null,
    stripeTotalMinor: string,
    q: Queryable = this.pool,
  ): Promise<InvoiceRow | undefined> {
    const { rows } = await q.query<InvoiceRow>(
      `UPDATE invoices SET status = 'finalized', hosted_invoice_url = $2, stripe_total_minor = $3, sync_error = NULL,
         finalized_at = coalesce(finalized_at, now()), updated_at = now()
       WHERE id = $1 AND status IN ('finalizing', 'sync_failed') RETURNING ${INVOICE_COLUMNS}`,
      [id, hostedInvoiceUrl, stripeTotalMinor],
    );
    return rows[0];
  }

  /**
   * Records a Stripe webhook event and applies its status change in one transaction, so a
   * redelivered event id is acknowledged without being applied twice. Returns false for a duplicate.
   */
  async recordWebhookEvent(
    eventId: string,
    type: string,
    apply: (client: PoolClient) => Promise<void>,
  ): Promise<boolean> {
    return new Transactor(this.pool).run(async (client) => {
      const { rowCount } = await client.query(
        'INSERT INTO stripe_webhook_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING',
        [eventId, type],
      );
      if (!rowCount) return false; // already handled: nothing was written, committing is a no-op
      await apply(client);
      return true;
    });
  }

  /** Inside recordWebhookEvent: moves the invoice with this Stripe id if its status allows it. */
  async applyWebhookStatus(
    client: PoolClient,
    stripeInvoiceId: string,
    to: 'paid' | 'void' | 'uncollectible',
    from: string[],
  ): Promise<{ id: string; status: string } | undefined> {
    const stamp = to === 'paid' ? 'paid_at' : to === 'void' ? 'voided_at' : null;
    const { rows } = await client.query<{ id: string; status: string }>(
      `UPDATE invoices SET status = $2, ${stamp ? `${stamp} = coalesce(${stamp}, now()),` : ''} updated_at = now()
       WHERE stripe_invoice_id = $1 AND status = ANY($3::text[]) RETURNING id, status`,
      [stripeInvoiceId, to, from],
    );
    return rows[0];
  }

  /** How far ingestion has got: the per-partition high-water marks of occurred_at. */
  async listIngestProgress(): Promise<{ topic: string; partition: number; maxOccurredAt: Date | null; updatedAt: Date }[]> {
    const { rows } = await this.pool.query(
      `SELECT topic, partition, max_occurred_at AS "maxOccurredAt", updated_at AS "updatedAt" FROM ingest_progress ORDER BY topic, partition`,
    );
    return rows;
  }

  async listIngestProgressOffsets(): Promise<{ topic: string; partition: number; nextOffset: string }[]> {
    const { rows } = await this.pool.query(`SELECT topic, partition, next_offset::text AS "nextOffset" FROM ingest_progress`);
    return rows;
  }

  /**
   * Per account with usage or an invoice in the period: raw event totals, rollup totals, what
   * is still unbilled, and the invoice's own totals three ways (header, lines, claimed events).
   */
  async reconcile(bounds: PeriodBounds, accountId?: string): Promise<ReconciliationRow[]> {
    const { rows } = await this.pool.query<ReconciliationRow>(RECONCILE_SQL, [bounds.start, bounds.end, bounds.period, accountId ?? null]);
    return rows;
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

// Period membership uses [start, end) on occurred_at for events and on the hour for rollups:
// hours are UTC-aligned and a month boundary is an hour boundary, so both cut at the same instant.
const RECONCILE_SQL = `
WITH raw AS (
  SELECT account_id, count(*) AS events, coalesce(sum(cost_usd), 0) AS cost,
         coalesce(sum(cost_usd) FILTER (WHERE invoice_id IS NULL), 0) AS unbilled,
         count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
  FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 AND ($4::text IS NULL OR account_id = $4)
  GROUP BY account_id
), rollup AS (
  SELECT account_id, sum(requests) AS requests, sum(cost_usd) AS cost
  FROM usage_hourly WHERE hour >= $1 AND hour < $2 AND ($4::text IS NULL OR account_id = $4)
  GROUP BY account_id
), inv AS (
  SELECT i.*,
    (SELECT coalesce(sum(amount_exact_usd), 0) FROM invoice_lines l WHERE l.invoice_id = i.id) AS lines_exact,
    (SELECT coalesce(sum(amount_minor), 0) FROM invoice_lines l WHERE l.invoice_id = i.id) AS lines_minor,
    (SELECT coalesce(sum(cost_usd), 0) FROM usage_events e WHERE e.account_id = i.account_id AND e.invoice_id = i.id) AS claimed
  FROM invoices i WHERE i.period = $3 AND ($4::text IS NULL OR i.account_id = $4)
), accts AS (
  SELECT account_id FROM raw UNION SELECT account_id FROM rollup UNION SELECT account_id FROM inv
)
SELECT a.account_id AS "accountId",
  coalesce(raw.events, 0)::text AS "rawEvents", coalesce(raw.cost, 0)::text AS "rawCostUsd",
  coalesce(rollup.requests, 0)::text AS "rollupRequests", coalesce(rollup.cost, 0)::text AS "rollupCostUsd",
  coalesce(raw.unbilled, 0)::text AS "unbilledCostUsd", coalesce(raw.unpriced, 0)::text AS "unpricedEvents",
  inv.id AS "invoiceId", inv.status AS "invoiceStatus", inv.total_exact_usd::text AS "invoiceTotalExactUsd",
  inv.total_minor::text AS "invoiceTotalMinor", inv.lines_exact::text AS "invoiceLinesExactUsd",
  inv.lines_minor::text AS "invoiceLinesMinor", inv.claimed::text AS "invoiceClaimedCostUsd",
  inv.stripe_invoice_id AS "stripeInvoiceId", inv.stripe_total_minor::text AS "stripeTotalMinor"
FROM accts a
LEFT JOIN raw ON raw.account_id = a.account_id
LEFT JOIN rollup ON rollup.account_id = a.account_id
LEFT JOIN inv ON inv.account_id = a.account_id
ORDER BY a.account_id`;
