import { ConflictError, NotFoundError, parsePeriod, periodLabel } from '@tokenmeter/billing';
import type { InvoiceRow, InvoicesRepository } from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';
import { forEachLimited } from './close.service';

export interface SyncOutcome {
  invoiceId: string;
  status: string;
  stripeInvoiceId: string | null;
  error?: string;
}

/**
 * Stripe idempotency keys, derived from our ids (Stripe replays the first response for a key for
 * 24 hours, so a rerun within that window can never create a second customer, invoice or item).
 */
export const idempotencyKeys = {
  customer: (accountId: string) => `cus-${accountId}`,
  invoice: (invoiceId: string) => `inv-${invoiceId}`,
  item: (invoiceId: string, lineKey: string) => `ii-${invoiceId}-${lineKey}`,
  finalize: (invoiceId: string) => `fin-${invoiceId}`,
  void: (invoiceId: string) => `void-${invoiceId}`,
};

/**
 * Pushes invoices to Stripe. Each step's result is stored before the next step starts:
 *
 *   1. customer      -> accounts.stripe_customer_id
 *   2. invoice       -> invoices.stripe_invoice_id
 *   3. one item/line -> invoice_lines.stripe_invoice_item_id
 *   4. finalize      -> status finalized, hosted_invoice_url, stripe_total_minor
 *
 * A rerun skips what is stored and repeats the first unstored step with the same idempotency
 * key, so a crash after Stripe did the work but before we stored it replays Stripe's answer.
 */
export class InvoiceSyncService {
  constructor(
    private readonly invoices: InvoicesRepository,
    private readonly stripe: StripeGateway,
    private readonly options: { invoiceConcurrency?: number } = {},
  ) {}

  /** Pushes several invoices, a few at a time (the gateway also caps requests in flight). */
  async pushMany(invoiceIds: string[], onProgress?: (done: number, total: number) => void): Promise<SyncOutcome[]> {
    const outcomes: SyncOutcome[] = [];
    let done = 0;
    await forEachLimited(invoiceIds, this.options.invoiceConcurrency ?? 10, async (id) => {
      outcomes.push(await this.push(id));
      onProgress?.(++done, invoiceIds.length);
    });
    return outcomes;
  }

  /** Admin finalize of a draft, or a resume of an interrupted push. Never throws for Stripe failures. */
  async push(invoiceId: string): Promise<SyncOutcome> {
    let invoice = await this.getOrFail(invoiceId);
    if (invoice.status === 'draft') {
      // Freezes the lines: a close run holding the (account, period) lock finishes first, and
      // afterwards leaves a non-draft invoice alone.
      invoice = (await this.invoices.transition(invoiceId, ['draft'], 'finalizing')) ?? (await this.getOrFail(invoiceId));
    }
    if (invoice.status === 'sync_failed') {
      invoice = (await this.invoices.transition(invoiceId, ['sync_failed'], 'finalizing', { syncError: null })) ?? (await this.getOrFail(invoiceId));
    }
    if (invoice.status !== 'finalizing') {
      return { invoiceId, status: invoice.status, stripeInvoiceId: invoice.stripeInvoiceId };
    }
    await this.invoices.recordSyncAttempt(invoiceId);
    try {
      return await this.pushSteps(invoice);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const failed = await this.invoices.transition(invoiceId, ['finalizing'], 'sync_failed', { syncError: reason.slice(0, 2000) });
      return { invoiceId, status: failed?.status ?? 'sync_failed', stripeInvoiceId: invoice.stripeInvoiceId, error: reason };
    }
  }

  /** retry-sync: only for an invoice whose push failed or was interrupted. */
  async retrySync(invoiceId: string): Promise<SyncOutcome> {
    const invoice = await this.getOrFail(invoiceId);
    if (invoice.status !== 'sync_failed' && invoice.status !== 'finalizing') {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; only sync_failed or finalizing invoices can be retried`);
    }
    return this.push(invoiceId);
  }

  /** finalize: only a draft can be finalized (a failed push is retried with retry-sync). */
  async finalize(invoiceId: string): Promise<SyncOutcome> {
    const invoice = await this.getOrFail(invoiceId);
    if (invoice.status !== 'draft' && invoice.status !== 'finalizing') {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; only a draft can be finalized`);
    }
    return this.push(invoiceId);
  }

  /**
   * Voids an invoice. A draft never reached Stripe and is voided here only (its events stay
   * claimed: a write-off, never re-billed). A finalized one is voided in Stripe first.
   */
  async void(invoiceId: string): Promise<InvoiceRow> {
    const invoice = await this.getOrFail(invoiceId);
    if (invoice.status === 'void') return invoice;
    if (invoice.status === 'draft') {
      const voided = await this.invoices.transition(invoiceId, ['draft'], 'void', { voidedAt: true });
      if (voided) return voided;
      return this.void(invoiceId);
    }
    if (invoice.status !== 'finalized' && invoice.status !== 'uncollectible') {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; it cannot be voided`);
    }
    await this.stripe.voidInvoice(invoice.stripeInvoiceId!, idempotencyKeys.void(invoiceId));
    const voided = await this.invoices.transition(invoiceId, ['finalized', 'uncollectible'], 'void', { voidedAt: true });
    return voided ?? this.getOrFail(invoiceId);
  }

  private async pushSteps(invoice: InvoiceRow): Promise<SyncOutcome> {
    const customerId = await this.ensureCustomer(invoice.accountId);

    let stripeInvoiceId = invoice.stripeInvoiceId;
    if (!stripeInvoiceId) {
      const created = await this.stripe.createInvoice(
        {
          customerId,
          description: `Tokenmeter usage, ${periodLabel(invoice.period)}`,
          metadata: { tokenmeter_invoice_id: invoice.id, account_id: invoice.accountId, period: invoice.period },
        },
        idempotencyKeys.invoice(invoice.id),
      );
      stripeInvoiceId = created.id;
      await this.invoices.setStripeInvoice(invoice.id, customerId, stripeInvoiceId);
    }

    const lines = await this.invoices.listLines(invoice.id);
    for (const line of lines) {
      if (line.stripeInvoiceItemId) continue;
      const service = parsePeriod(line.servicePeriod);
      const item = await this.stripe.createInvoiceItem(
        {
          customerId,
          stripeInvoiceId,
          amountMinor: BigInt(line.amountMinor),
          currency: 'usd',
          description: line.description,
          period: { start: service.start, end: new Date(service.end.getTime() - 1000) },
          metadata: {
            tokenmeter_invoice_id: invoice.id,
            line_key: line.lineKey,
            model: line.model,
            token_type: line.tokenType,
            service_period: line.servicePeriod,
            quantity_tokens: line.quantity,
            unit_price_per_mtok_usd: line.unitPricePerMTok,
            amount_exact_usd: line.amountExactUsd,
          },
        },
        idempotencyKeys.item(invoice.id, line.lineKey),
      );
      await this.invoices.setLineStripeItem(line.id, item.id);
    }

    const finalized = await this.stripe.finalizeInvoice(stripeInvoiceId, idempotencyKeys.finalize(invoice.id));
    const stored = await this.invoices.markFinalized(invoice.id, finalized.hostedInvoiceUrl, finalized.totalMinor.toString());
    return { invoiceId: invoice.id, status: stored?.status ?? 'finalized', stripeInvoiceId };
  }

  private async ensureCustomer(accountId: string): Promise<string> {
    const stored = await this.invoices.getAccountStripeCustomerId(accountId);
    if (stored) return stored;
    const account = await this.invoices.getAccount(accountId);
    const created = await this.stripe.createCustomer(
      { accountId, name: account?.name ?? null, email: account?.email ?? null },
      idempotencyKeys.customer(accountId),
    );
    return this.invoices.setAccountStripeCustomerId(accountId, created.id);
  }

  private async getOrFail(invoiceId: string): Promise<InvoiceRow> {
    const invoice = await this.invoices.getInvoice(invoiceId);
    if (!invoice) throw new NotFoundError('invoice', invoiceId);
    return invoice;
  }
}
