import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { ConflictError, grantIdOfLineKey, NotFoundError, needsStripeSync, parsePeriod, periodLabel, statusesThatCanBecome, type InvoiceStatus } from '@tokenmeter/billing';
import type { Logger } from '@tokenmeter/config';
import type { AccountsRepository, AuditLogRepository, InvoiceLineRow, InvoiceRow, InvoicesRepository, Transactor } from '@tokenmeter/db';
import type { InvoiceLineParams, StripeGateway, StripeInvoiceLineSummary, StripeInvoiceResult } from '@tokenmeter/stripe';
import { invoiceAuditEntry, type InvoiceAdminAction } from './admin-audit';
import type { InvoiceCredits } from './invoice-credits';

export interface SyncOutcome {
  invoiceId: string;
  status: InvoiceStatus;
  stripeInvoiceId: string | null;
  error?: string;
}

/**
 * Stripe idempotency keys, derived from our ids (Stripe replays the first response for a key for
 * 24 hours, so a rerun within that window can never create a second customer, invoice or line;
 * after that, a resumed push finds what exists by the ids in metadata, see InvoiceSyncService).
 */
export const idempotencyKeys = {
  customer: (accountId: string) => `cus-${accountId}`,
  invoice: (invoiceId: string) => `inv-${invoiceId}`,
  /**
   * One add_lines call: the invoice and exactly the lines it carries (sorted, so the same chunk
   * is the same key however it was assembled). A retry of the chunk replays Stripe's answer;
   * a different chunk is a different request and can never be mistaken for this one.
   */
  lines: (invoiceId: string, lineKeys: readonly string[]) =>
    `lines-${invoiceId}-${createHash('sha256').update([...lineKeys].sort().join('\n')).digest('hex')}`,
  finalize: (invoiceId: string) => `fin-${invoiceId}`,
  void: (invoiceId: string) => `void-${invoiceId}`,
};

/**
 * Pushes invoices to Stripe. Each step's result is stored before the next step starts:
 *
 *   1. customer      -> accounts.stripe_customer_id (AccountsRepository)
 *   2. invoice       -> invoices.stripe_invoice_id
 *   3. lines         -> invoice_lines.stripe_pushed_at, per add_lines call of up to
 *                       maxLinesPerCall lines (one request per chunk, not one per line)
 *   4. finalize      -> status finalized, hosted_invoice_url, stripe_total_minor
 *
 * A rerun skips what is stored and repeats the first unstored step with the same idempotency
 * key, so a crash after Stripe did the work but before we stored it replays Stripe's answer.
 * Stripe forgets keys after 24 hours, so a push that may have reached Stripe before (a resumed
 * one: sync_attempts > 0) first looks for what it would create, by our ids in metadata:
 *
 *   customer  metadata account_id             (search; only while none is stored)
 *   invoice   metadata tokenmeter_invoice_id  (the customer's invoices since ours was created)
 *   lines     metadata tokenmeter_invoice_id + line_key (the Stripe invoice's lines)
 *   finalize  the Stripe invoice's status     (already finalized: take Stripe's answer)
 *
 * and reuses it. A first push skips the lookups: nothing of it can exist yet, and Stripe's
 * search has a lower rate limit than creates.
 */
export class InvoiceSyncService {
  constructor(
    private readonly invoices: InvoicesRepository,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
    private readonly stripe: StripeGateway,
    private readonly credits: InvoiceCredits,
    private readonly options: { invoiceConcurrency: number; log?: Logger },
  ) {}

  /** Pushes several invoices, a few at a time (the gateway also caps requests in flight). */
  async pushMany(invoiceIds: string[], onProgress?: (done: number, total: number) => void): Promise<SyncOutcome[]> {
    const outcomes: SyncOutcome[] = [];
    let done = 0;
    const limit = pLimit(this.options.invoiceConcurrency);
    await Promise.all(
      invoiceIds.map((id) =>
        limit(async () => {
          outcomes.push(await this.push(id));
          onProgress?.(++done, invoiceIds.length);
        }),
      ),
    );
    return outcomes;
  }

  /**
   * Pushes a draft, or resumes an interrupted or failed push. Never throws for Stripe failures:
   * the invoice ends sync_failed with the reason (which names the Stripe operation).
   * `admin`: the admin action this push is, audited in the transaction that records the outcome.
   */
  async push(invoiceId: string, admin?: InvoiceAdminAction): Promise<SyncOutcome> {
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
      // Someone else finished it (or it moved on): nothing to change, the request is still audited.
      if (admin) await this.audit.append(invoiceAuditEntry(admin, invoice));
      return { invoiceId, status: invoice.status, stripeInvoiceId: invoice.stripeInvoiceId };
    }
    // Counted before any Stripe call: a later attempt knows this one may have reached Stripe.
    const resumed = invoice.syncAttempts > 0;
    await this.invoices.recordSyncAttempt(invoiceId);
    let stripeInvoiceId = invoice.stripeInvoiceId;
    try {
      const pushed = await this.pushSteps(invoice, resumed);
      stripeInvoiceId = pushed.stripeInvoiceId;
      const stored = await this.transactor.run(async (q) => {
        const row =
          (await this.invoices.transition(
            invoice.id,
            statusesThatCanBecome('finalized'),
            'finalized',
            { syncError: null, finalized: { hostedInvoiceUrl: pushed.finalized.hostedInvoiceUrl, stripeTotalMinor: pushed.finalized.totalMinor.toString() } },
            q,
          )) ??
          (await this.invoices.getInvoice(invoice.id, q))!;
        if (admin) await this.audit.append(invoiceAuditEntry(admin, row), q);
        return row;
      });
      return { invoiceId, status: stored.status, stripeInvoiceId };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.options.log?.warn({ invoiceId, accountId: invoice.accountId, err: reason }, 'Stripe push failed: invoice is sync_failed');
      const failed = await this.transactor.run(async (q) => {
        const row =
          (await this.invoices.transition(invoiceId, ['finalizing'], 'sync_failed', { syncError: reason.slice(0, 2000) }, q)) ??
          (await this.invoices.getInvoice(invoiceId, q))!;
        if (admin) await this.audit.append(invoiceAuditEntry(admin, row), q);
        return row;
      });
      return { invoiceId, status: failed.status, stripeInvoiceId: failed.stripeInvoiceId ?? stripeInvoiceId, error: reason };
    }
  }

  /** retry-sync (admin): only for an invoice whose push failed or was interrupted. */
  async retrySync(invoiceId: string, actorKeyId: string | null): Promise<SyncOutcome> {
    const invoice = await this.getOrFail(invoiceId);
    if (!needsStripeSync(invoice.status)) {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; only sync_failed or finalizing invoices can be retried`);
    }
    return this.push(invoiceId, { action: 'invoices.retry_sync', actorKeyId, before: invoice });
  }

  /** finalize (admin): only a draft can be finalized (a failed push is retried with retry-sync). */
  async finalize(invoiceId: string, actorKeyId: string | null): Promise<SyncOutcome> {
    const invoice = await this.getOrFail(invoiceId);
    if (invoice.status !== 'draft' && invoice.status !== 'finalizing') {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; only a draft can be finalized`);
    }
    return this.push(invoiceId, { action: 'invoices.finalize', actorKeyId, before: invoice });
  }

  /**
   * void (admin). A draft never reached Stripe and is voided here only (its events stay
   * claimed: a write-off, never re-billed). A finalized one is voided in Stripe first.
   */
  async void(invoiceId: string, actorKeyId: string | null): Promise<InvoiceRow> {
    const before = await this.getOrFail(invoiceId);
    return this.voidAudited(invoiceId, { action: 'invoices.void', actorKeyId, before });
  }

  private async voidAudited(invoiceId: string, admin: InvoiceAdminAction): Promise<InvoiceRow> {
    const invoice = await this.getOrFail(invoiceId);
    if (invoice.status === 'void') {
      await this.audit.append(invoiceAuditEntry(admin, invoice));
      return invoice;
    }
    if (invoice.status === 'draft') {
      const voided = await this.transactor.run(async (q) => {
        const row = await this.invoices.transition(invoiceId, ['draft'], 'void', {}, q);
        if (row) {
          // Its credits go back to their grants with the move (the events stay claimed: a write-off).
          await this.credits.reverseInvoice(q, row.accountId, row.id);
          await this.audit.append(invoiceAuditEntry(admin, row), q);
        }
        return row;
      });
      // Not a draft any more (a push froze it meanwhile): decide again from its new status.
      return voided ?? this.voidAudited(invoiceId, admin);
    }
    if (invoice.status !== 'finalized' && invoice.status !== 'uncollectible') {
      throw new ConflictError(`invoice ${invoiceId} is ${invoice.status}; it cannot be voided`);
    }
    await this.stripe.voidInvoice(invoice.stripeInvoiceId!, idempotencyKeys.void(invoiceId));
    return this.transactor.run(async (q) => {
      const moved = await this.invoices.transition(invoiceId, ['finalized', 'uncollectible'], 'void', {}, q);
      // Only the move writes the reversals (a webhook's void may have made it first, with its own).
      if (moved) await this.credits.reverseInvoice(q, moved.accountId, moved.id);
      const row = moved ?? (await this.invoices.getInvoice(invoiceId, q))!;
      await this.audit.append(invoiceAuditEntry(admin, row), q);
      return row;
    });
  }

  /** Steps 1-3 and the Stripe side of 4; the caller stores the finalized state. */
  private async pushSteps(invoice: InvoiceRow, resumed: boolean): Promise<{ stripeInvoiceId: string; finalized: StripeInvoiceResult }> {
    const customerId = await this.ensureCustomer(invoice, resumed);

    let stripeInvoiceId = invoice.stripeInvoiceId;
    // Lines can only exist on a Stripe invoice an earlier attempt created.
    let mayHaveLines = stripeInvoiceId !== null;
    if (!stripeInvoiceId) {
      const found = resumed ? await this.findStripeInvoice(customerId, invoice) : undefined;
      mayHaveLines = found !== undefined;
      stripeInvoiceId =
        found?.id ??
        (
          await this.stripe.createInvoice(
            {
              customerId,
              description: `Tokenmeter usage, ${periodLabel(invoice.period)}`,
              metadata: { tokenmeter_invoice_id: invoice.id, account_id: invoice.accountId, period: invoice.period },
            },
            idempotencyKeys.invoice(invoice.id),
          )
        ).id;
      await this.invoices.setStripeInvoice(invoice.id, customerId, stripeInvoiceId);
    }

    await this.pushLines(stripeInvoiceId, invoice, mayHaveLines);

    if (resumed) {
      // An earlier attempt may have finalized it and lost the answer; once its key is forgotten
      // Stripe would refuse a second finalize, so take the invoice as it is.
      const current = await this.stripe.retrieveInvoice(stripeInvoiceId);
      if (current.status !== 'draft') return { stripeInvoiceId, finalized: current };
    }
    const finalized = await this.stripe.finalizeInvoice(stripeInvoiceId, idempotencyKeys.finalize(invoice.id));
    return { stripeInvoiceId, finalized };
  }

  /**
   * Step 3: the lines not yet marked pushed go to Stripe in chunks of maxLinesPerCall, in line
   * id order, each chunk marked pushed (in one statement) right after Stripe took it. A crash
   * between the two leaves the chunk unmarked; the rerun forms the same chunk from the same
   * unmarked lines and sends the same key, and Stripe replays its answer instead of adding the
   * lines twice. When the Stripe invoice existed before this attempt (the keys may be forgotten
   * by now), its lines are listed first and those already there are only marked.
   */
  private async pushLines(stripeInvoiceId: string, invoice: InvoiceRow, mayHaveLines: boolean): Promise<void> {
    let pending = (await this.invoices.listLines(invoice.id)).filter((l) => !l.stripePushedAt);
    if (pending.length === 0) return;
    if (mayHaveLines) {
      const existing = await this.findStripeLines(stripeInvoiceId, invoice.id);
      const there = pending.filter((line) => isAlreadyThere(existing.get(line.lineKey), line));
      await this.invoices.markLinesPushed(there.map((l) => l.id));
      pending = pending.filter((line) => !existing.has(line.lineKey));
    }
    const size = this.stripe.maxLinesPerCall;
    for (let i = 0; i < pending.length; i += size) {
      const chunk = pending.slice(i, i + size);
      await this.stripe.addInvoiceLines(
        stripeInvoiceId,
        chunk.map((line) => stripeLine(invoice, line)),
        idempotencyKeys.lines(invoice.id, chunk.map((l) => l.lineKey)),
      );
      await this.invoices.markLinesPushed(chunk.map((l) => l.id));
    }
  }

  private async ensureCustomer(invoice: InvoiceRow, resumed: boolean): Promise<string> {
    const accountId = invoice.accountId;
    const stored = await this.accounts.getStripeCustomerId(accountId);
    if (stored) return stored;
    // This push, or an earlier push of another invoice of the account, may have created the
    // customer and lost the answer.
    const mayExist = resumed || (await this.invoices.hasOtherSyncAttempts(accountId, invoice.id));
    const found = mayExist ? await this.stripe.getCustomerByAccountId(accountId) : undefined;
    if (found) return this.accounts.setStripeCustomerId(accountId, found.id);
    const account = await this.accounts.getAccount(accountId);
    const created = await this.stripe.createCustomer(
      { accountId, name: account?.name ?? null, email: account?.email ?? null },
      idempotencyKeys.customer(accountId),
    );
    return this.accounts.setStripeCustomerId(accountId, created.id);
  }

  /** The Stripe invoice an earlier attempt created for ours, by metadata tokenmeter_invoice_id. */
  private async findStripeInvoice(customerId: string, invoice: InvoiceRow): Promise<{ id: string } | undefined> {
    // Ours existed before its Stripe invoice; a day's margin absorbs any clock difference.
    const since = new Date(invoice.createdAt.getTime() - 24 * 3600_000);
    const candidates = await this.stripe.listInvoices(customerId, since);
    return candidates.find((c) => c.metadata.tokenmeter_invoice_id === invoice.id);
  }

  /** Lines an earlier attempt added to the Stripe invoice, by line key. */
  private async findStripeLines(stripeInvoiceId: string, invoiceId: string): Promise<Map<string, StripeInvoiceLineSummary>> {
    const lines = await this.stripe.listInvoiceLines(stripeInvoiceId);
    const byLine = new Map<string, StripeInvoiceLineSummary>();
    for (const line of lines) {
      if (line.metadata.tokenmeter_invoice_id !== invoiceId || !line.metadata.line_key) continue;
      if (!byLine.has(line.metadata.line_key)) byLine.set(line.metadata.line_key, line);
    }
    return byLine;
  }

  private async getOrFail(invoiceId: string): Promise<InvoiceRow> {
    const invoice = await this.invoices.getInvoice(invoiceId);
    if (!invoice) throw new NotFoundError('invoice', invoiceId);
    return invoice;
  }
}

/** What Stripe gets for one of our lines: integer cents, the service period, our ids and exact figures in metadata. */
function stripeLine(invoice: InvoiceRow, line: InvoiceLineRow): InvoiceLineParams {
  const service = parsePeriod(line.servicePeriod);
  return {
    amountMinor: BigInt(line.amountMinor),
    description: line.description,
    // Stripe's period end is inclusive: the last second of the service month.
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
      // Credit lines: the grant they apply (also in the line key), so Stripe's side names it too.
      ...(line.tokenType === 'credit' ? { grant_id: grantIdOfLineKey(line.lineKey)! } : {}),
    },
  };
}

/**
 * A Stripe line with our line key is ours to keep only if it carries the line's amount: lines
 * are frozen from finalizing on, so a different amount means something else wrote it, and
 * finalizing an invoice with it would bill the wrong total. The push fails (sync_failed) with
 * the reason instead.
 */
function isAlreadyThere(found: StripeInvoiceLineSummary | undefined, line: InvoiceLineRow): boolean {
  if (found && found.amountMinor !== BigInt(line.amountMinor)) {
    throw new Error(`Stripe invoice line ${found.id} for line ${line.lineKey} is ${found.amountMinor} cents, the line ${line.amountMinor}; not reusing it`);
  }
  return found !== undefined;
}
