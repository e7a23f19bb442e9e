/**
 * Invoice lifecycle:
 *
 *   draft -> finalizing -> finalized -> paid | void | uncollectible
 *                     \-> sync_failed -> finalizing (retry-sync)
 *
 * - draft: lines are recomputed by every close run (late events for the month update it).
 * - finalizing: content frozen, Stripe push in progress (or interrupted: a rerun resumes it).
 * - sync_failed: the push gave up after retries; the reason is stored; retry-sync resumes it.
 * - finalized: finalized in Stripe; immutable. Later usage for its month goes on the next invoice.
 * - paid / void / uncollectible: set by Stripe webhooks (void also by an admin).
 */
export type InvoiceStatus = 'draft' | 'finalizing' | 'finalized' | 'sync_failed' | 'paid' | 'void' | 'uncollectible';

export const INVOICE_STATUSES: readonly InvoiceStatus[] = ['draft', 'finalizing', 'finalized', 'sync_failed', 'paid', 'void', 'uncollectible'];

const TRANSITIONS: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  // A draft can be written off before it ever reaches Stripe.
  draft: ['finalizing', 'void'],
  finalizing: ['finalized', 'sync_failed'],
  sync_failed: ['finalizing'],
  finalized: ['paid', 'void', 'uncollectible'],
  // Stripe lets an uncollectible invoice still be paid or voided.
  uncollectible: ['paid', 'void'],
  paid: [],
  void: [],
};

export function canTransition(from: InvoiceStatus, to: InvoiceStatus): boolean {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Only a draft's lines may change; everything else is what the customer was (or will be) billed. */
export function isMutable(status: InvoiceStatus): boolean {
  return status === 'draft';
}

/** Statuses whose Stripe push has not completed: a rerun or retry-sync picks them up. */
export function needsStripeSync(status: InvoiceStatus): boolean {
  return status === 'finalizing' || status === 'sync_failed';
}
