import { buildInvoiceLines } from './invoice';
import { usd } from './money';

describe('a price change in the middle of the month', () => {
  it('gives two lines for the model and token type, one per rate, each rounded on its own', () => {
    const draft = buildInvoiceLines('2026-11', [
      { model: 'gpt-4o', tokenType: 'output', servicePeriod: '2026-11', ratePerMTok: usd('10'), tokens: 1_000_500n, amountUsd: usd('10.005') },
      { model: 'gpt-4o', tokenType: 'output', servicePeriod: '2026-11', ratePerMTok: usd('8'), tokens: 500_000n, amountUsd: usd('4') },
    ]);
    expect(draft.lines.map((l) => [l.description, l.amountMinor])).toEqual([
      ['gpt-4o output tokens, 500,000 x $8.00 per 1M, Nov 2026', 400n],
      ['gpt-4o output tokens, 1,000,500 x $10.00 per 1M, Nov 2026', 1001n],
    ]);
    expect(draft.totalMinor).toBe(1401n);
  });

  it('merges two price versions that charge the same rate into one line', () => {
    const draft = buildInvoiceLines('2026-11', [
      { model: 'gpt-4o', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.5'), tokens: 100n, amountUsd: usd('0.00025') },
      { model: 'gpt-4o', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('2.5000000000'), tokens: 300n, amountUsd: usd('0.00075') },
    ]);
    expect(draft.lines).toHaveLength(1);
    expect(draft.lines[0].quantity).toBe(400n);
  });
});
