import { buildInvoiceLines, type InvoiceUsageRow } from './invoice';
import { Decimal, usd } from './money';

const row = (over: Partial<InvoiceUsageRow> & { tokens: bigint; ratePerMTok: Decimal }): InvoiceUsageRow => ({
  model: 'm',
  tokenType: 'input',
  servicePeriod: '2026-11',
  amountUsd: new Decimal(over.tokens.toString()).times(over.ratePerMTok).dividedBy(1_000_000),
  ...over,
});

describe('invoice lines are rounded once, half up, to cents', () => {
  it.each([
    [5_000n, '1', 1n], // $0.005 -> 1 cent
    [4_999n, '1', 0n], // $0.004999 -> 0
    [1_115_000n, '1', 112n], // $1.115 -> $1.12
    [1_114_999n, '1', 111n],
    [25_000n, '0.2', 1n], // $0.005 through a fractional rate
  ])('%s tokens at $%s per 1M -> %s cents', (tokens, rate, cents) => {
    const draft = buildInvoiceLines('2026-11', [row({ tokens, ratePerMTok: usd(rate) })]);
    expect(draft.lines).toHaveLength(1);
    expect(draft.lines[0].amountMinor).toBe(cents);
    expect(draft.totalMinor).toBe(cents);
  });

  it('sums many tiny events into one line before rounding, so they are not rounded away', () => {
    // 10,000 events of 1 token at $4 per 1M: $0.000004 each (0 cents if rounded per event), $0.04 together.
    const rows = Array.from({ length: 10_000 }, () => row({ tokens: 1n, ratePerMTok: usd('4') }));
    const draft = buildInvoiceLines('2026-11', rows);
    expect(draft.lines).toHaveLength(1);
    expect(draft.lines[0].quantity).toBe(10_000n);
    expect(draft.lines[0].amountExactUsd.toFixed()).toBe('0.04');
    expect(draft.lines[0].amountMinor).toBe(4n);
  });

  it('totals the rounded lines: many sub-cent lines total 0 cents even though their exact sum is not 0', () => {
    const rows = Array.from({ length: 40 }, (_, i) => row({ model: `model-${String(i).padStart(2, '0')}`, tokens: 1_000n, ratePerMTok: usd('4') }));
    const draft = buildInvoiceLines('2026-11', rows);
    expect(draft.lines).toHaveLength(40);
    expect(draft.lines.every((l) => l.amountMinor === 0n)).toBe(true); // $0.004 each
    expect(draft.totalExactUsd.toFixed()).toBe('0.16');
    expect(draft.totalMinor).toBe(0n);
  });

  it('rounds a negative discount line half away from zero', () => {
    // list $0.05, charged $0.045: the discount is -$0.005 -> -1 cent
    const draft = buildInvoiceLines('2026-11', [
      row({ tokens: 50_000n, ratePerMTok: usd('1'), amountUsd: usd('0.045'), discountPercent: usd('10') }),
    ]);
    expect(draft.lines.map((l) => [l.tokenType, l.amountMinor])).toEqual([
      ['input', 5n],
      ['discount', -1n],
    ]);
    expect(draft.totalMinor).toBe(4n);
  });

  it('drops zero-token lines and builds an empty invoice from no usage', () => {
    expect(buildInvoiceLines('2026-11', [row({ tokens: 0n, ratePerMTok: usd('3') })]).lines).toEqual([]);
    const empty = buildInvoiceLines('2026-11', []);
    expect(empty.totalMinor).toBe(0n);
    expect(empty.totalExactUsd.isZero()).toBe(true);
  });
});
