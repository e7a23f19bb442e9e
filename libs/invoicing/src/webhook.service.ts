import { statusesThatCanBecome, type InvoiceStatus } from '@tokenmeter/billing';
import type { InvoicesRepository, StripeWebhookEventsRepository, Transactor } from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';
import type { CreditTopUpService } from './credit-top-ups.service';
import type { InvoiceCredits } from './invoice-credits';

export type WebhookResult =
  | { outcome: 'applied'; eventId: string; type: string; invoiceId: string; status: InvoiceStatus }
  | { outcome: 'applied'; eventId: string; type: string; grantId: string; grantStatus: 'active' | 'voided' }
  | { outcome: 'duplicate' | 'ignored'; eventId: string; type: string; reason?: string };

/**
 * The status each Stripe event moves an invoice to, from any status the transition table lets
 * become it. That includes finalizing and sync_failed: Stripe is the source of truth for payment,
 * and its event can overtake our own bookkeeping of the finalize response. (A draft never has a
 * Stripe id, so an event cannot name one.)
 */
const TARGETS: Record<string, InvoiceStatus> = {
  'invoice.paid': 'paid',
  'invoice.voided': 'void',
  'invoice.marked_uncollectible': 'uncollectible',
};

/**
 * Stripe webhooks: the signature is verified over the raw body (WebhookSignatureError otherwise),
 * each event id is recorded once in the same transaction as its effect, unknown types are
 * acknowledged and ignored (so Stripe stops redelivering them).
 */
export class StripeWebhookService {
  constructor(
    private readonly invoices: InvoicesRepository,
    private readonly events: StripeWebhookEventsRepository,
    private readonly transactor: Transactor,
    private readonly stripe: StripeGateway,
    private readonly credits: InvoiceCredits,
    private readonly topUps: CreditTopUpService,
  ) {}

  async handle(rawBody: Buffer | string, signature: string | undefined): Promise<WebhookResult> {
    const event = this.stripe.verifyWebhook(rawBody, signature);
    const seen = { eventId: event.id, type: event.type };
    const to = TARGETS[event.type];
    const stripeInvoiceId = typeof event.object.id === 'string' ? event.object.id : undefined;
    return this.transactor.run(async (q): Promise<WebhookResult> => {
      // A redelivered id was handled before: nothing is written, committing is a no-op.
      if (!(await this.events.recordEvent(event.id, event.type, q))) return { outcome: 'duplicate', ...seen };
      if (!to) return { outcome: 'ignored', ...seen, reason: 'unhandled event type' };
      if (!stripeInvoiceId) return { outcome: 'ignored', ...seen, reason: 'event has no invoice id' };
      const moved = await this.invoices.transitionByStripeInvoiceId(stripeInvoiceId, statusesThatCanBecome(to), to, q);
      if (!moved && (to === 'paid' || to === 'void')) {
        // A credit top-up's own invoice: paid activates its grant (with its ledger entry), void cancels it.
        const topUp = to === 'paid' ? await this.topUps.activate(stripeInvoiceId, q) : await this.topUps.cancel(stripeInvoiceId, q);
        if (topUp?.moved) return { outcome: 'applied', ...seen, grantId: topUp.grant.id, grantStatus: to === 'paid' ? 'active' : 'voided' };
        if (topUp) return { outcome: 'ignored', ...seen, reason: `credit grant ${topUp.grant.id} is ${topUp.grant.status} already` };
      }
      if (!moved) return { outcome: 'ignored', ...seen, reason: `no invoice with stripe id ${stripeInvoiceId} in a status that can become ${to}` };
      // A void in Stripe gives the invoice's credits back, in the transaction of the move.
      if (to === 'void') await this.credits.reverseInvoice(q, moved.accountId, moved.id);
      return { outcome: 'applied', ...seen, invoiceId: moved.id, status: moved.status };
    });
  }
}
