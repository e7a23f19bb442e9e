import {
  assertTransitions,
  canTransition,
  INVOICE_STATUSES,
  InvoiceTransitionError,
  isMutable,
  needsStripeSync,
  PUSHABLE_STATUSES,
  statusesThatCanBecome,
  type InvoiceStatus,
} from './invoice-status';
import { ConflictError } from './errors';

/**
 * The moves the invoicing code really makes (libs/invoicing: sync.service push/void, webhook.service,
 * close.service), each with the call that makes it. The table in invoice-status.ts must allow
 * exactly these: one more is a move nothing makes, one fewer breaks the code path named.
 */
const MOVES: [InvoiceStatus, InvoiceStatus, string][] = [
  ['draft', 'finalizing', 'push starts: the lines freeze'],
  ['sync_failed', 'finalizing', 'push resumes (retry-sync, next close run)'],
  ['finalizing', 'finalized', 'push stores Stripe\'s finalize answer'],
  ['sync_failed', 'finalized', 'a concurrent push finished after this one gave up'],
  ['finalizing', 'sync_failed', 'push gives up after its retries'],
  ['draft', 'void', 'admin void of a draft (never reached Stripe)'],
  ['finalized', 'void', 'admin void (in Stripe first), or invoice.voided'],
  ['uncollectible', 'void', 'admin void, or invoice.voided'],
  ['finalized', 'paid', 'invoice.paid'],
  ['uncollectible', 'paid', 'invoice.paid'],
  ['finalizing', 'paid', 'invoice.paid overtaking our finalize bookkeeping'],
  ['sync_failed', 'paid', 'invoice.paid overtaking our finalize bookkeeping'],
  ['finalizing', 'void', 'invoice.voided overtaking our finalize bookkeeping'],
  ['sync_failed', 'void', 'invoice.voided overtaking our finalize bookkeeping'],
  ['finalized', 'uncollectible', 'invoice.marked_uncollectible'],
  ['finalizing', 'uncollectible', 'invoice.marked_uncollectible overtaking our finalize bookkeeping'],
  ['sync_failed', 'uncollectible', 'invoice.marked_uncollectible overtaking our finalize bookkeeping'],
];

describe('invoice status transitions', () => {
  it('allows exactly the moves the invoicing services make', () => {
    const allowed = INVOICE_STATUSES.flatMap((from) => INVOICE_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from} -> ${to}`));
    expect(allowed.sort()).toEqual(MOVES.map(([from, to]) => `${from} -> ${to}`).sort());
  });

  it('lets webhooks settle an invoice whose push has not been recorded as finished, and never reopens paid or void', () => {
    // webhook.service moves from statusesThatCanBecome(target); drafts have no Stripe id to match.
    expect(statusesThatCanBecome('paid')).toEqual(['finalizing', 'finalized', 'sync_failed', 'uncollectible']);
    expect(statusesThatCanBecome('void')).toEqual(['draft', 'finalizing', 'finalized', 'sync_failed', 'uncollectible']);
    expect(statusesThatCanBecome('uncollectible')).toEqual(['finalizing', 'finalized', 'sync_failed']);
    for (const to of INVOICE_STATUSES) {
      expect(canTransition('paid', to)).toBe(false);
      expect(canTransition('void', to)).toBe(false);
    }
  });

  it('only moves into finalizing from a draft or a failed push, and nothing goes back to draft', () => {
    expect(statusesThatCanBecome('finalizing')).toEqual(['draft', 'sync_failed']);
    expect(statusesThatCanBecome('finalized')).toEqual(['finalizing', 'sync_failed']);
    expect(statusesThatCanBecome('draft')).toEqual([]);
    expect(isMutable('draft')).toBe(true);
    expect(INVOICE_STATUSES.filter(isMutable)).toEqual(['draft']);
  });

  it('pushes drafts and resumes unfinished pushes, and nothing else', () => {
    expect(INVOICE_STATUSES.filter(needsStripeSync)).toEqual(['finalizing', 'sync_failed']);
    expect([...PUSHABLE_STATUSES]).toEqual(['draft', 'finalizing', 'sync_failed']);
  });

  it('refuses an illegal move with a typed conflict naming both statuses', () => {
    expect(() => assertTransitions(['finalized', 'uncollectible'], 'void')).not.toThrow();
    let thrown: unknown;
    try {
      assertTransitions(['finalized', 'paid'], 'void');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvoiceTransitionError);
    expect(thrown).toBeInstanceOf(ConflictError);
    expect(thrown).toMatchObject({ from: 'paid', to: 'void', code: 'conflict', message: 'an invoice cannot move from paid to void' });
  });
});
