import { buildInvoiceLines } from './invoice';
import { usd } from './money';

describe('account price overrides on the invoice', () => {
  it('shows a rate-card override as its own rate, with no discount line', () => {
    const draft = buildInvoiceLines('2026-11', [
      { model: 'claude-sonnet-4', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.40'), tokens: 2_000_000n, amountUsd: usd('4.8') },
    ]);
    expect(draft.lines.map((l) => l.description)).toEqual(['claude-sonnet-4 input tokens, 2,000,000 x $2.40 per 1M, Nov 2026']);
    expect(draft.totalMinor).toBe(480n);
  });

  it('shows a percentage discount as list-rate lines plus one negative discount line per model', () => {
    // 20% off: input list $3.00 charged $2.40; output list $15.00 charged $12.00
    const draft = buildInvoiceLines('2026-11', [
      { model: 'claude-sonnet-4', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('3'), tokens: 1_000_000n, amountUsd: usd('2.4'), discountPercent: usd('20') },
      { model: 'claude-sonnet-4', tokenType: 'output', servicePeriod: '2026-11', ratePerMTok: usd('15'), tokens: 1_000_000n, amountUsd: usd('12'), discountPercent: usd('20') },
      { model: 'gpt-4o', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.5'), tokens: 1_000_000n, amountUsd: usd('2.5') },
    ]);
    expect(draft.lines.map((l) => [l.tokenType, l.description, l.amountMinor])).toEqual([
      ['input', 'claude-sonnet-4 input tokens, 1,000,000 x $3.00 per 1M, Nov 2026', 300n],
      ['output', 'claude-sonnet-4 output tokens, 1,000,000 x $15.00 per 1M, Nov 2026', 1500n],
      ['discount', 'claude-sonnet-4 discount 20%, Nov 2026', -360n],
      ['input', 'gpt-4o input tokens, 1,000,000 x $2.50 per 1M, Nov 2026', 250n],
    ]);
    // The exact total is exactly what the events were charged.
    expect(draft.totalExactUsd.toFixed()).toBe('16.9');
    expect(draft.totalMinor).toBe(1690n);
  });

  it('gives one discount line per percentage when the discount changed during the month', () => {
    const draft = buildInvoiceLines('2026-11', [
      { model: 'gpt-4o', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.5'), tokens: 1_000_000n, amountUsd: usd('2.25'), discountPercent: usd('10') },
      { model: 'gpt-4o', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.5'), tokens: 1_000_000n, amountUsd: usd('2'), discountPercent: usd('20') },
    ]);
    expect(draft.lines.map((l) => [l.description, l.amountMinor])).toEqual([
      ['gpt-4o input tokens, 2,000,000 x $2.50 per 1M, Nov 2026', 500n],
      ['gpt-4o discount 10%, Nov 2026', -25n],
      ['gpt-4o discount 20%, Nov 2026', -50n],
    ]);
  });
});
