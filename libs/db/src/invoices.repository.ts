import type { Pool, PoolClient } from 'pg';
import { assertTransitions, INITIAL_INVOICE_STATUS, type BillingPeriod, type InvoiceStatus } from '@tokenmeter/billing';
import { pgTransaction, type Queryable } from './transactor';
import type { ClaimedUsageRow, UsageEventClaimsRepository } from './usage-event-claims.repository';

/**
 * invoices and invoice_lines: one aggregate. Amounts cross this boundary as exact decimal strings
 * and bigint-safe strings; the billing maths and the decisions stay in the invoicing services.
 * Every status change is one UPDATE (move), checked against libs/billing's transition table.
 */
export interface InvoiceRow {
  id: string;
  accountId: string;
  period: string;
  periodStart: Date;
  periodEnd: Date;
  status: InvoiceStatus;
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

/** A stored line: the new line plus its ids and, once it is on the Stripe invoice, when that was recorded. */
export interface InvoiceLineRow extends NewInvoiceLine {
  id: string;
  invoiceId: string;
  stripePushedAt: Date | null;
}

/**
 * What a status change writes besides the status. The timestamps follow from the target status
 * (finalized_at, paid_at, voided_at are set once, by the first move into their status).
 */
export interface InvoiceStatusChange {
  /** null clears it (a push resumes or succeeds); a string records why the push failed. */
  syncError?: string | null;
  /** Stripe's answer to the finalize; only with to = 'finalized'. */
  finalized?: { hostedInvoiceUrl: string | null; stripeTotalMinor: string };
}

const INVOICE_COLUMNS = `id, account_id AS "accountId", period, period_start AS "periodStart", period_end AS "periodEnd",
  status, currency, total_exact_usd::text AS "totalExactUsd", total_minor::text AS "totalMinor",
  stripe_customer_id AS "stripeCustomerId", stripe_invoice_id AS "stripeInvoiceId", hosted_invoice_url AS "hostedInvoiceUrl",
  stripe_total_minor::text AS "stripeTotalMinor", sync_error AS "syncError", sync_attempts AS "syncAttempts",
  finalized_at AS "finalizedAt", paid_at AS "paidAt", voided_at AS "voidedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

const LINE_COLUMNS = `id::text, invoice_id AS "invoiceId", line_key AS "lineKey", model, token_type AS "tokenType",
  service_period AS "servicePeriod", quantity::text, unit_price_per_mtok::text AS "unitPricePerMTok",
  amount_exact_usd::text AS "amountExactUsd", amount_minor::text AS "amountMinor", description,
  stripe_pushed_at AS "stripePushedAt"`;

/**
 * A transaction holding the (account, period) invoice lock. Only exists inside withInvoiceLock.
 * The claim on usage_events goes through UsageEventClaimsRepository, in this same transaction.
 */
export class InvoiceCloseTx {
  constructor(
    /** The transaction's connection, for the other repositories the close writes in it (the credit ledger). */
    readonly client: PoolClient,
    private readonly claims: UsageEventClaimsRepository,
    readonly accountId: string,
    readonly bounds: BillingPeriod,
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
       VALUES ($1, $2, $3, $4, $5, $6, 0, 0, now())`,
      [id, this.accountId, this.bounds.period, this.bounds.start, this.bounds.end, INITIAL_INVOICE_STATUS],
    );
  }

  /** See UsageEventClaimsRepository.claimForInvoice. */
  claimEvents(invoiceId: string): Promise<number> {
    return this.claims.claimForInvoice(this.client, this.accountId, this.bounds, invoiceId);
  }

  listClaimedUsage(invoiceId: string): Promise<ClaimedUsageRow[]> {
    return this.claims.listClaimedUsage(this.client, this.accountId, invoiceId);
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
  constructor(
    private readonly pool: Pool,
    private readonly claims: UsageEventClaimsRepository,
  ) {}

  /**
   * Runs `fn` in one transaction holding a transaction-scoped advisory lock on (account, period),
   * so two close runs for the same invoice queue instead of racing; the unique (account_id,
   * period) index is the backstop. `commit: false` rolls back (dry runs).
   */
  async withInvoiceLock<T>(
    accountId: string,
    bounds: BillingPeriod,
    fn: (tx: InvoiceCloseTx) => Promise<{ result: T; commit: boolean }>,
  ): Promise<T> {
    return pgTransaction(this.pool, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('tokenmeter:invoice:' || $1 || ':' || $2, 0))`, [
        accountId,
        bounds.period,
      ]);
      return fn(new InvoiceCloseTx(client, this.claims, accountId, bounds));
    });
  }

  /** Accounts with a draft for `period` (a close run refreshes it). */
  async listAccountsWithDraft(period: string, accountId?: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ account_id: string }>(
      `SELECT account_id FROM invoices WHERE period = $1 AND status = 'draft' AND ($2::text IS NULL OR account_id = $2)`,
      [period, accountId ?? null],
    );
    return rows.map((r) => r.account_id);
  }

  async getInvoice(id: string, q: Queryable = this.pool): Promise<InvoiceRow | undefined> {
    const { rows } = await q.query<InvoiceRow>(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id = $1`, [id]);
    return rows[0];
  }

  async listLines(invoiceId: string): Promise<InvoiceLineRow[]> {
    const { rows } = await this.pool.query<InvoiceLineRow>(
      `SELECT ${LINE_COLUMNS} FROM invoice_lines WHERE invoice_id = $1 ORDER BY invoice_lines.id`,
      [invoiceId],
    );
    return rows;
  }

  async listInvoices(filter: { accountId?: string; period?: string; statuses?: readonly InvoiceStatus[]; limit?: number }): Promise<InvoiceRow[]> {
    const { rows } = await this.pool.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices
       WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR period = $2) AND ($3::text[] IS NULL OR status = ANY($3))
       ORDER BY period DESC, account_id, id LIMIT $4`,
      [filter.accountId ?? null, filter.period ?? null, filter.statuses ?? null, filter.limit ?? 1000],
    );
    return rows;
  }

  /**
   * Compare-and-set on status: moves the invoice to `to` if it is in one of `from`; undefined
   * when it was not (someone else moved it first). Throws InvoiceTransitionError, before writing
   * anything, when a status in `from` may not become `to`.
   */
  transition(
    id: string,
    from: readonly InvoiceStatus[],
    to: InvoiceStatus,
    set: InvoiceStatusChange = {},
    q: Queryable = this.pool,
  ): Promise<InvoiceRow | undefined> {
    return this.move('id', id, from, to, set, q);
  }

  /** transition, for the invoice a Stripe webhook names by its Stripe id. */
  transitionByStripeInvoiceId(
    stripeInvoiceId: string,
    from: readonly InvoiceStatus[],
    to: InvoiceStatus,
    q: Queryable = this.pool,
  ): Promise<InvoiceRow | undefined> {
    return this.move('stripe_invoice_id', stripeInvoiceId, from, to, {}, q);
  }

  /** The one statement that changes invoices.status. */
  private async move(
    key: 'id' | 'stripe_invoice_id',
    value: string,
    from: readonly InvoiceStatus[],
    to: InvoiceStatus,
    set: InvoiceStatusChange,
    q: Queryable,
  ): Promise<InvoiceRow | undefined> {
    assertTransitions(from, to);
    if (set.finalized && to !== 'finalized') throw new Error(`Stripe's finalize answer can only be stored by a move to finalized, not ${to}`);
    const { rows } = await q.query<InvoiceRow>(
      `UPDATE invoices SET status = $3,
         sync_error = CASE WHEN $4::boolean THEN $5 ELSE sync_error END,
         hosted_invoice_url = CASE WHEN $6::boolean THEN $7 ELSE hosted_invoice_url END,
         stripe_total_minor = CASE WHEN $6::boolean THEN $8::bigint ELSE stripe_total_minor END,
         finalized_at = CASE WHEN $3::text = 'finalized' THEN coalesce(finalized_at, now()) ELSE finalized_at END,
         paid_at = CASE WHEN $3::text = 'paid' THEN coalesce(paid_at, now()) ELSE paid_at END,
         voided_at = CASE WHEN $3::text = 'void' THEN coalesce(voided_at, now()) ELSE voided_at END,
         updated_at = now()
       WHERE ${key} = $1 AND status = ANY($2::text[])
       RETURNING ${INVOICE_COLUMNS}`,
      [
        value,
        from,
        to,
        set.syncError !== undefined,
        set.syncError ?? null,
        set.finalized !== undefined,
        set.finalized?.hostedInvoiceUrl ?? null,
        set.finalized?.stripeTotalMinor ?? null,
      ],
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

  async setStripeInvoice(id: string, stripeCustomerId: string, stripeInvoiceId: string): Promise<void> {
    await this.pool.query(
      `UPDATE invoices SET stripe_customer_id = $2, stripe_invoice_id = $3, updated_at = now() WHERE id = $1`,
      [id, stripeCustomerId, stripeInvoiceId],
    );
  }

  /**
   * Records that these lines are on the invoice's Stripe invoice, in one statement: a chunk sent
   * in one add_lines call is marked whole or not at all, so a resumed push re-forms the same chunk
   * (and sends the same idempotency key).
   */
  async markLinesPushed(lineIds: string[]): Promise<void> {
    if (lineIds.length === 0) return;
    await this.pool.query('UPDATE invoice_lines SET stripe_pushed_at = now() WHERE id = ANY($1::bigint[]) AND stripe_pushed_at IS NULL', [lineIds]);
  }
}
