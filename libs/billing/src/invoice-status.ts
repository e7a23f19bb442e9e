import { ConflictError } from './errors';

/**
 * Invoice lifecycle (docs/invoicing.md, "Lifecycle"):
 *
 *   draft -> finalizing -> finalized -> paid | void | uncollectible
 *                     \-> sync_failed -> finalizing (retry-sync, next close run)
 *   draft -> void (write-off before it ever reached Stripe)
 *
 * - draft: lines are recomputed by every close run (late events for the month update it).
 * - finalizing: content frozen, Stripe push in progress (or interrupted: a rerun resumes it).
 * - sync_failed: the push gave up after retries; the reason is stored; retry-sync resumes it.
 * - finalized: finalized in Stripe; immutable. Later usage for its month goes on the next invoice.
 * - paid / void / uncollectible: set by Stripe webhooks (void also by an admin).
 */
export type InvoiceStatus = 'draft' | 'finalizing' | 'finalized' | 'sync_failed' | 'paid' | 'void' | 'uncollectible';

export const INVOICE_STATUSES: readonly InvoiceStatus[] = ['draft', 'finalizing', 'finalized', 'sync_failed', 'paid', 'void', 'uncollectible'];

/** A close run creates every invoice as a draft; all later changes are moves in TRANSITIONS. */
export const INITIAL_INVOICE_STATUS: InvoiceStatus = 'draft';

/**
 * Every move an invoice's status can make, and who makes it. InvoicesRepository refuses any
 * other (InvoiceTransitionError), so this table is the only place the rules live.
 */
const TRANSITIONS: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  // A push starts (freezing the lines), or an admin writes the draft off before it reaches Stripe.
  draft: ['finalizing', 'void'],
  // The push ends one way or the other. Stripe's webhook can overtake our own bookkeeping of the
  // finalize answer (Stripe is the source of truth for payment), so it settles from here too.
  finalizing: ['finalized', 'sync_failed', 'paid', 'void', 'uncollectible'],
  // retry-sync or the next close run resumes the push. finalized: a concurrent push that did
  // finish records Stripe's answer over the one that gave up. The webhooks as from finalizing.
  sync_failed: ['finalizing', 'finalized', 'paid', 'void', 'uncollectible'],
  // Webhooks; void also by an admin (in Stripe first).
  finalized: ['paid', 'void', 'uncollectible'],
  // Stripe lets an uncollectible invoice still be paid or voided.
  uncollectible: ['paid', 'void'],
  // Final: a paid or void invoice never changes again (a late event is ignored).
  paid: [],
  void: [],
};

/** An attempt to move an invoice along an edge TRANSITIONS does not have: a bug in the caller. */
export class InvoiceTransitionError extends ConflictError {
  constructor(
    readonly from: InvoiceStatus,
    readonly to: InvoiceStatus,
  ) {
    super(`an invoice cannot move from ${from} to ${to}`);
  }
}

export function canTransition(from: InvoiceStatus, to: InvoiceStatus): boolean {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Throws InvoiceTransitionError unless every status in `from` may become `to`. */
export function assertTransitions(from: readonly InvoiceStatus[], to: InvoiceStatus): void {
  for (const f of from) if (!canTransition(f, to)) throw new InvoiceTransitionError(f, to);
}

/** Every status that may become `to`, in INVOICE_STATUSES order. */
export function statusesThatCanBecome(to: InvoiceStatus): InvoiceStatus[] {
  return INVOICE_STATUSES.filter((from) => canTransition(from, to));
}

/** Only a draft's lines may change; everything else is what the customer was (or will be) billed. */
export function isMutable(status: InvoiceStatus): boolean {
  return status === 'draft';
}

/** Statuses whose Stripe push has started and not completed: a rerun or retry-sync picks them up. */
export function needsStripeSync(status: InvoiceStatus): boolean {
  return status === 'finalizing' || status === 'sync_failed';
}

/** What a push starts from (a draft) or resumes (needsStripeSync): a close run pushes all of these. */
export const PUSHABLE_STATUSES: readonly InvoiceStatus[] = INVOICE_STATUSES.filter((s) => isMutable(s) || needsStripeSync(s));
