import { ValidationError } from './errors';
import { buildInvoiceLines } from './invoice';
import { usd } from './money';

describe('late usage from an already finalized month', () => {
  const draft = buildInvoiceLines('2026-11', [
    { model: 'deepseek-r1', tokenType: 'output', servicePeriod: '2026-11', ratePerMTok: usd('2.2857'), tokens: 1_000_000n, amountUsd: usd('2.2857') },
    { model: 'deepseek-r1', tokenType: 'output', servicePeriod: '2026-10', ratePerMTok: usd('2.2857'), tokens: 2_000n, amountUsd: usd('0.0045714') },
  ]);

  it('is its own adjustment line naming the month it was served in, after this month\'s lines', () => {
    expect(draft.lines.map((l) => [l.servicePeriod, l.description, l.amountMinor])).toEqual([
      ['2026-11', 'deepseek-r1 output tokens, 1,000,000 x $2.2857 per 1M, Nov 2026', 229n],
      ['2026-10', 'deepseek-r1 output tokens, 2,000 x $2.2857 per 1M (usage from Oct 2026)', 0n],
    ]);
    expect(draft.lines[1].lineKey).toBe('2026-10:deepseek-r1:output:2.2857');
  });

  it('cannot come from a later month than the invoice', () => {
    expect(() =>
      buildInvoiceLines('2026-10', [
        { model: 'm', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('1'), tokens: 1n, amountUsd: usd('0.000001') },
      ]),
    ).toThrow(ValidationError);
  });
});
