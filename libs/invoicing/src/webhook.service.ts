import type { InvoicesRepository } from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';

export type WebhookResult =
  | { outcome: 'applied'; eventId: string; type: string; invoiceId: string; status: string }
  | { outcome: 'duplicate' | 'ignored'; eventId: string; type: string; reason?: string };

// Which of our statuses each Stripe event may move an invoice out of. finalizing and sync_failed
// are included: Stripe is the source of truth for payment, and its event can overtake our own
// bookkeeping of the finalize response.
const MOVES: Record<string, { to: 'paid' | 'void' | 'uncollectible'; from: string[] }> = {
  'invoice.paid': { to: 'paid', from: ['finalized', 'uncollectible', 'finalizing', 'sync_failed'] },
  'invoice.voided': { to: 'void', from: ['finalized', 'uncollectible', 'finalizing', 'sync_failed'] },
  'invoice.marked_uncollectible': { to: 'uncollectible', from: ['finalized', 'finalizing', 'sync_failed'] },
};

/**
 * Stripe webhooks: the signature is verified over the raw body (WebhookSignatureError otherwise),
 * each event id is recorded once in the same transaction as its effect, unknown types are
 * acknowledged and ignored (so Stripe stops redelivering them).
 */
export class StripeWebhookService {
  constructor(
    private readonly invoices: InvoicesRepository,
    private readonly stripe: StripeGateway,
  ) {}

  async handle(rawBody: Buffer | string, signature: string | undefined): Promise<WebhookResult> {
    const event = this.stripe.verifyWebhook(rawBody, signature);
    const move = MOVES[event.type];
    const stripeInvoiceId = typeof event.object.id === 'string' ? event.object.id : undefined;
    let applied: { id: string; status: string } | undefined;
    let reason: string | undefined;
    const recorded = await this.invoices.recordWebhookEvent(event.id, event.type, async (client) => {
      if (!move) {
        reason = 'unhandled event type';
        return;
      }
      if (!stripeInvoiceId) {
        reason = 'event has no invoice id';
        return;
      }
      applied = await this.invoices.applyWebhookStatus(client, stripeInvoiceId, move.to, move.from);
      if (!applied) reason = `no invoice with stripe id ${stripeInvoiceId} in a status that can become ${move.to}`;
    });
    if (!recorded) return { outcome: 'duplicate', eventId: event.id, type: event.type };
    if (!applied) return { outcome: 'ignored', eventId: event.id, type: event.type, reason };
    return { outcome: 'applied', eventId: event.id, type: event.type, invoiceId: applied.id, status: applied.status };
  }
}
