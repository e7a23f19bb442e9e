import { idempotencyKeys } from './sync.service';

describe('the add_lines idempotency key', () => {
  const invoiceId = 'inv_0001';

  it('is the same for the same lines in any order, so a re-formed chunk replays', () => {
    expect(idempotencyKeys.lines(invoiceId, ['b', 'a', 'c'])).toBe(idempotencyKeys.lines(invoiceId, ['a', 'b', 'c']));
  });

  it('differs when one line more or less, or another invoice: a different chunk is a different request', () => {
    const key = idempotencyKeys.lines(invoiceId, ['a', 'b']);
    expect(idempotencyKeys.lines(invoiceId, ['a'])).not.toBe(key);
    expect(idempotencyKeys.lines(invoiceId, ['a', 'b', 'c'])).not.toBe(key);
    expect(idempotencyKeys.lines('inv_0002', ['a', 'b'])).not.toBe(key);
    // Joined with a separator line keys cannot contain, so ['ab'] is not ['a', 'b'].
    expect(idempotencyKeys.lines(invoiceId, ['ab'])).not.toBe(idempotencyKeys.lines(invoiceId, ['a', 'b']));
  });

  it('names the invoice and stays well inside Stripe\'s 255 characters', () => {
    const key = idempotencyKeys.lines('0d6b7c9e-3f0a-4b8e-9d1c-2a3b4c5d6e7f', Array.from({ length: 100 }, (_, i) => `deepseek-r1:input:0.5714:2026-11:${i}`));
    expect(key).toMatch(/^lines-0d6b7c9e-3f0a-4b8e-9d1c-2a3b4c5d6e7f-[0-9a-f]{64}$/);
    expect(key.length).toBeLessThanOrEqual(255);
  });
});
