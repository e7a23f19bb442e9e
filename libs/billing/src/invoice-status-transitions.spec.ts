import { canTransition, isMutable } from './invoice-status';

describe('invoice status transitions', () => {
  it('freezes an invoice once its Stripe push starts', () => {
    expect(isMutable('draft')).toBe(true);
    expect(isMutable('finalizing')).toBe(false);
    expect(canTransition('draft', 'finalizing')).toBe(true);
    expect(canTransition('finalizing', 'draft')).toBe(false);
  });

  it('lets webhooks settle only finalized invoices, and never reopens a paid or void one', () => {
    expect(canTransition('finalized', 'paid')).toBe(true);
    expect(canTransition('uncollectible', 'paid')).toBe(true);
    expect(canTransition('paid', 'void')).toBe(false);
    expect(canTransition('void', 'paid')).toBe(false);
    expect(canTransition('sync_failed', 'finalizing')).toBe(true);
  });
});
