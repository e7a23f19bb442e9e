import { buildInvoiceLines } from './invoice';
import { usd } from './money';

describe('a deepseek-r1 invoice at the seed rates (0.5714 / 2.2857 / 0.2286 per 1M)', () => {
  const draft = buildInvoiceLines('2026-11', [
    { model: 'deepseek-r1', tokenType: 'output', servicePeriod: '2026-11', ratePerMTok: usd('2.2857000000'), tokens: 12_345_678n, amountUsd: usd('28.2185162046') },
    { model: 'deepseek-r1', tokenType: 'input', servicePeriod: '2026-11', ratePerMTok: usd('0.5714000000'), tokens: 3_456_789n, amountUsd: usd('1.9752092346') },
    { model: 'deepseek-r1', tokenType: 'cache_read', servicePeriod: '2026-11', ratePerMTok: usd('0.2286000000'), tokens: 9_876_543n, amountUsd: usd('2.2577777298') },
  ]);

  it('has one line per token type, in input, output, cache read order, with readable descriptions', () => {
    expect(draft.lines.map((l) => l.description)).toEqual([
      'deepseek-r1 input tokens, 3,456,789 x $0.5714 per 1M, Nov 2026',
      'deepseek-r1 output tokens, 12,345,678 x $2.2857 per 1M, Nov 2026',
      'deepseek-r1 cache read tokens, 9,876,543 x $0.2286 per 1M, Nov 2026',
    ]);
    expect(draft.lines.map((l) => l.lineKey)).toEqual([
      '2026-11:deepseek-r1:input:0.5714',
      '2026-11:deepseek-r1:output:2.2857',
      '2026-11:deepseek-r1:cache_read:0.2286',
    ]);
  });

  it('rounds each line once and totals the rounded lines ($32.46, although the exact total rounds to $32.45)', () => {
    expect(draft.lines.map((l) => [l.amountExactUsd.toFixed(), l.amountMinor])).toEqual([
      ['1.9752092346', 198n],
      ['28.2185162046', 2822n],
      ['2.2577777298', 226n],
    ]);
    expect(draft.totalExactUsd.toFixed()).toBe('32.451503169');
    expect(draft.totalMinor).toBe(3246n);
  });
});
