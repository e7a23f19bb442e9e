import { ConflictError, InvoiceTransitionError } from '@tokenmeter/billing';
import { InvoicesRepository, UsageEventClaimsRepository } from '@tokenmeter/db';
import { SdkStripeGateway, type StripeInvoiceResult } from '@tokenmeter/stripe';
import { aUsageEvent } from '../factories/usage-events';
import { invoicingFor, readyToCloseNovember, useDatabaseAndStripeProxy, WEBHOOK_SECRET } from '../helpers/invoicing';

/** The real SDK gateway, with a hook that runs after Stripe finalized an invoice and before we store it. */
class GatewayWithFinalizeHook extends SdkStripeGateway {
  afterStripeFinalized: (stripeInvoiceId: string) => Promise<void> = async () => undefined;

  override async finalizeInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult> {
    const result = await super.finalizeInvoice(stripeInvoiceId, idempotencyKey);
    await this.afterStripeFinalized(stripeInvoiceId);
    return result;
  }
}

/**
 * The status moves that only happen when Stripe and our bookkeeping disagree for a moment: a
 * webhook settles an invoice whose push we have not recorded as finished (sync_failed, or still
 * finalizing), and the push that comes after does not move it back. And the one table refuses
 * a move it does not have, before anything is written.
 */
describe('invoice status moves across the push and Stripe webhooks', () => {
  const { db, proxy } = useDatabaseAndStripeProxy();
  let gateway: GatewayWithFinalizeHook;
  const now = () => new Date('2026-12-02T00:00:00Z');
  const svc = () => invoicingFor(db, gateway, now);
  const row = async (id: string) =>
    (await db.pool.query(`SELECT status, stripe_invoice_id, paid_at, finalized_at, sync_error FROM invoices WHERE id = $1`, [id])).rows[0];
  let eventSeq = 0;
  const deliver = (type: string, stripeInvoiceId: string) => {
    const payload = JSON.stringify({ id: `evt_moves_${++eventSeq}`, object: 'event', type, data: { object: { id: stripeInvoiceId, object: 'invoice' } } });
    return svc().webhooks.handle(payload, gateway.signWebhookPayload(payload));
  };

  let draftId: string;
  beforeEach(async () => {
    proxy.clearFaults();
    gateway = new GatewayWithFinalizeHook({
      apiKey: 'sk_test_tokenmeter',
      apiBase: proxy.url,
      webhookSecret: WEBHOOK_SECRET,
      maxInFlight: 10,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      timeoutMs: 5000,
    });
    await readyToCloseNovember(db, [aUsageEvent({ account_id: 'acct_m', usage: { input_tokens: 1_000_000, output_tokens: 10_000 } })]);
    draftId = (await svc().closer.close('2026-11', { finalize: false })).results[0].invoiceId!;
  });

  it('invoice.paid settles a sync_failed invoice; retry-sync and the next close leave it paid', async () => {
    proxy.inject({ match: (m, p) => m === 'POST' && /\/finalize$/.test(p), mode: 'before_503', times: Infinity });
    expect((await svc().sync.finalize(draftId, null)).status).toBe('sync_failed');
    const failed = await row(draftId);
    expect(failed.status).toBe('sync_failed');
    expect(failed.stripe_invoice_id).toMatch(/^in_/);

    // Stripe finalized and was paid after all (say, finalized by hand in the dashboard).
    expect(await deliver('invoice.paid', failed.stripe_invoice_id)).toMatchObject({ outcome: 'applied', invoiceId: draftId, status: 'paid' });
    const paid = await row(draftId);
    expect(paid.status).toBe('paid');
    expect(paid.paid_at).toBeInstanceOf(Date);

    proxy.clearFaults();
    await expect(svc().sync.retrySync(draftId, null)).rejects.toThrow(ConflictError);
    // Not pushable any more: the next close run has nothing to do for the account.
    expect((await svc().closer.close('2026-11')).results).toEqual([]);
    expect((await row(draftId)).status).toBe('paid');
    // Nothing goes back: a late invoice.marked_uncollectible for it is acknowledged and ignored.
    expect((await deliver('invoice.marked_uncollectible', failed.stripe_invoice_id)).outcome).toBe('ignored');
  });

  it('invoice.paid overtaking the push (still finalizing) wins; the push then reports paid', async () => {
    let overtaken: unknown;
    gateway.afterStripeFinalized = async (stripeInvoiceId) => {
      expect((await row(draftId)).status).toBe('finalizing');
      overtaken = await deliver('invoice.paid', stripeInvoiceId);
    };
    const outcome = await svc().sync.finalize(draftId, 'key_admin');
    expect(overtaken).toMatchObject({ outcome: 'applied', status: 'paid' });
    expect(outcome.status).toBe('paid');
    const after = await row(draftId);
    expect(after.status).toBe('paid');
    expect(after.paid_at).toBeInstanceOf(Date);
    // The push did not move it to finalized over the payment.
    expect(after.finalized_at).toBeNull();
  });

  it('refuses a move the table does not have, before writing anything', async () => {
    const invoices = new InvoicesRepository(db.pool, new UsageEventClaimsRepository(db.pool));
    await expect(invoices.transition(draftId, ['draft'], 'paid')).rejects.toThrow(InvoiceTransitionError);
    await expect(invoices.transition(draftId, ['draft', 'paid'], 'void')).rejects.toMatchObject({ from: 'paid', to: 'void' });
    expect((await row(draftId)).status).toBe('draft');
    // A legal move whose from-list does not hold the current status is a no-op, not an error.
    expect(await invoices.transition(draftId, ['finalized'], 'void')).toBeUndefined();
    expect((await row(draftId)).status).toBe('draft');
  });
});
