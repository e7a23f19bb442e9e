import {
  applyCreditsToInvoice,
  buildInvoiceLines,
  costUnitsToString,
  grantIdOfLineKey,
  toCostUnits,
  usd,
  ValidationError,
  type CreditPool,
  type CreditUsage,
  type InvoiceUsageRow,
} from './index';

const u = (amount: string) => toCostUnits(usd(amount));
const at = (iso: string) => new Date(iso);
const pool = (over: Partial<CreditPool> & { id: string }): CreditPool => ({
  category: 'paid',
  priority: 0,
  effectiveAt: at('2026-10-01T00:00:00Z'),
  expiresAt: null,
  models: [],
  createdAt: at('2026-09-01T00:00:00Z'),
  availableUnits: u('100'),
  ...over,
});
const use = (iso: string, amount: string, model = 'deepseek-r1'): CreditUsage => ({ at: at(iso), model, costUnits: u(amount), servicePeriod: iso.slice(0, 7) });
/** A usage row whose exact amount is `amount` (1,000,000 tokens at that rate). */
const row = (servicePeriod: string, amount: string, over: Partial<InvoiceUsageRow> = {}): InvoiceUsageRow => ({
  model: 'deepseek-r1',
  tokenType: 'output',
  servicePeriod,
  ratePerMTok: usd(amount),
  tokens: 1_000_000n,
  amountUsd: usd(amount),
  ...over,
});
const credits = (d: ReturnType<typeof applyCreditsToInvoice>) =>
  d.creditLines.map((l) => [l.lineKey, l.amountExactUsd.toFixed(), l.amountMinor, l.description]);

describe('credit lines: one per (grant, service period), exact = -allocated, cents rounded once, half up', () => {
  it('rounds each line once, half away from zero', () => {
    const draft = buildInvoiceLines('2026-11', [row('2026-11', '7.3'), row('2026-11', '0.005', { model: 'gpt-4o' })]);
    const d = applyCreditsToInvoice(
      draft,
      [pool({ id: 'g_a', priority: 0, availableUnits: u('1.234567') }), pool({ id: 'g_b', priority: 1, availableUnits: u('1') })],
      [use('2026-11-05T10:00:00Z', '1.234567'), use('2026-11-06T10:00:00Z', '0.005', 'gpt-4o')],
    );
    expect(credits(d)).toEqual([
      ['credit:2026-11:g_a', '-1.234567', -123n, 'Prepaid credit g_a, Nov 2026'],
      ['credit:2026-11:g_b', '-0.005', -1n, 'Prepaid credit g_b, Nov 2026'],
    ]);
    // 730 + 1 - 123 - 1; the exact total is the usage less every allocation.
    expect(d.totalMinor).toBe(607n);
    expect(d.totalExactUsd.toFixed()).toBe('6.065433');
    expect(d.consumption).toEqual([
      { grantId: 'g_a', servicePeriod: '2026-11', amountMinor: 123n },
      { grantId: 'g_b', servicePeriod: '2026-11', amountMinor: 1n },
    ]);
  });

  it('leaves out a credit under half a cent: it applies and consumes nothing', () => {
    const draft = buildInvoiceLines('2026-11', [row('2026-11', '0.0049999')]);
    const d = applyCreditsToInvoice(draft, [pool({ id: 'g' })], [use('2026-11-05T10:00:00Z', '0.0049999')]);
    expect(d.creditLines).toEqual([]);
    expect(d.consumption).toEqual([]);
    expect(d.totalExactUsd.toFixed()).toBe('0.0049999');
  });

  it('puts credit lines after every usage and discount line, in burn order, and names the grant and its category', () => {
    const draft = buildInvoiceLines('2026-11', [
      row('2026-11', '10', { amountUsd: usd('8') }), // a 20% discount: a -2.00 discount line
      row('2026-10', '1', { model: 'claude-sonnet-4' }),
    ]);
    const d = applyCreditsToInvoice(
      draft,
      [pool({ id: 'g_paid', availableUnits: u('3') }), pool({ id: 'g_promo', category: 'promotional', availableUnits: u('0.5') })],
      [use('2026-10-20T00:00:00Z', '1', 'claude-sonnet-4'), use('2026-11-02T00:00:00Z', '8')],
    );
    expect(d.lines.map((l) => l.tokenType)).toEqual(['output', 'discount', 'output', 'credit', 'credit', 'credit']);
    expect(credits(d)).toEqual([
      ['credit:2026-10:g_promo', '-0.5', -50n, 'Promotional credit g_promo (usage from Oct 2026)'],
      ['credit:2026-10:g_paid', '-0.5', -50n, 'Prepaid credit g_paid (usage from Oct 2026)'],
      ['credit:2026-11:g_paid', '-2.5', -250n, 'Prepaid credit g_paid, Nov 2026'],
    ]);
    expect(d.totalMinor).toBe(1000n - 200n + 100n - 350n);
    expect(grantIdOfLineKey('credit:2026-10:g_paid')).toBe('g_paid');
    expect(grantIdOfLineKey('2026-10:deepseek-r1:output:1')).toBeUndefined();
  });
});

describe('the total floor', () => {
  it('reduces the last credit line until the total is exactly zero, and its exact amount says what it applies', () => {
    // Two usage lines of $1.004 round to $1.00 each ($2.00) while $2.008 of usage is covered.
    const draft = buildInvoiceLines('2026-11', [row('2026-11', '1.004'), row('2026-11', '1.004', { model: 'claude-sonnet-4' })]);
    expect(draft.totalMinor).toBe(200n);
    const d = applyCreditsToInvoice(draft, [pool({ id: 'g' })], [use('2026-11-01T00:00:00Z', '1.004'), use('2026-11-01T01:00:00Z', '1.004', 'claude-sonnet-4')]);
    expect(credits(d)).toEqual([['credit:2026-11:g', '-2', -200n, 'Prepaid credit g, Nov 2026']]);
    expect(d.totalMinor).toBe(0n);
    expect(d.consumption).toEqual([{ grantId: 'g', servicePeriod: '2026-11', amountMinor: 200n }]);
  });

  it('takes from the last grant in burn order first', () => {
    // Three lines of $1.004 round to $3.00 while $3.012 of usage is covered.
    const draft = buildInvoiceLines('2026-11', [
      row('2026-11', '1.004'),
      row('2026-11', '1.004', { model: 'claude-sonnet-4' }),
      row('2026-11', '1.004', { model: 'gpt-4o' }),
    ]);
    const d = applyCreditsToInvoice(
      draft,
      [pool({ id: 'g1', priority: 0, availableUnits: u('1.504') }), pool({ id: 'g2', priority: 1 })],
      [use('2026-11-01T00:00:00Z', '1.004'), use('2026-11-01T01:00:00Z', '1.004', 'claude-sonnet-4'), use('2026-11-01T02:00:00Z', '1.004', 'gpt-4o')],
    );
    // g1 1.504 -> -150, g2 1.508 -> -151: -1 in total, taken off g2.
    expect(credits(d)).toEqual([
      ['credit:2026-11:g1', '-1.504', -150n, 'Prepaid credit g1, Nov 2026'],
      ['credit:2026-11:g2', '-1.5', -150n, 'Prepaid credit g2, Nov 2026'],
    ]);
    expect(d.totalMinor).toBe(0n);
    expect(d.totalExactUsd.toFixed()).toBe('0.008');
  });

  it('drops a credit line the floor takes to zero', () => {
    // Three lines of $0.004 round to nothing: $0.00 to pay, $0.012 of usage covered (-1 cent).
    const draft = buildInvoiceLines('2026-11', [
      row('2026-11', '0.004'),
      row('2026-11', '0.004', { model: 'claude-sonnet-4' }),
      row('2026-11', '0.004', { model: 'gpt-4o' }),
    ]);
    const d = applyCreditsToInvoice(
      draft,
      [pool({ id: 'g' })],
      [use('2026-11-01T00:00:00Z', '0.004'), use('2026-11-01T00:00:00Z', '0.004', 'claude-sonnet-4'), use('2026-11-01T00:00:00Z', '0.004', 'gpt-4o')],
    );
    expect(d.creditLines).toEqual([]);
    expect(d.consumption).toEqual([]);
    expect(d.totalMinor).toBe(0n);
    expect(d.totalExactUsd.toFixed()).toBe('0.012');
  });
});

describe('a grant never gives more cents than its balance', () => {
  it('caps the rounded lines of one grant across service periods at its pool', () => {
    const draft = buildInvoiceLines('2026-11', [row('2026-10', '0.505'), row('2026-11', '0.495'), row('2026-11', '3', { model: 'gpt-4o' })]);
    const d = applyCreditsToInvoice(draft, [pool({ id: 'g', availableUnits: u('1.00') })], [
      use('2026-10-30T00:00:00Z', '0.505'),
      use('2026-11-01T00:00:00Z', '0.495'),
      use('2026-11-02T00:00:00Z', '3', 'gpt-4o'),
    ]);
    // 0.505 -> 51 cents, 0.495 -> 50 cents: 101 > 100, so the later line gives 49.
    expect(credits(d)).toEqual([
      ['credit:2026-10:g', '-0.505', -51n, 'Prepaid credit g (usage from Oct 2026)'],
      ['credit:2026-11:g', '-0.49', -49n, 'Prepaid credit g, Nov 2026'],
    ]);
    expect(d.consumption.reduce((s, c) => s + c.amountMinor, 0n)).toBe(100n);
  });

  it('also for a single line: $4.996 of balance rounds to $5.00 but gives $4.99', () => {
    const draft = buildInvoiceLines('2026-11', [row('2026-11', '5.00')]);
    const d = applyCreditsToInvoice(draft, [pool({ id: 'g', availableUnits: u('4.996') })], [use('2026-11-03T00:00:00Z', '5')]);
    expect(credits(d)).toEqual([['credit:2026-11:g', '-4.99', -499n, 'Prepaid credit g, Nov 2026']]);
    expect(d.totalMinor).toBe(1n);
  });
});

describe('several grants, several service periods, late usage', () => {
  const grants = [
    // Promotional, expires Nov 10 at 08:30: burns first while it lasts.
    pool({ id: 'promo', category: 'promotional', effectiveAt: at('2026-10-15T00:00:00Z'), expiresAt: at('2026-11-10T08:30:00Z'), availableUnits: u('5') }),
    // Paid, effective from Nov 1 only: late October usage cannot draw on it.
    pool({ id: 'paid', effectiveAt: at('2026-11-01T00:00:00Z'), availableUnits: u('20') }),
  ];
  const usage = [
    use('2026-10-10T00:00:00Z', '1.111'), // before promo: billed as usual
    use('2026-10-20T00:00:00Z', '2.2222'), // late usage inside promo's window: draws on it
    use('2026-11-10T08:00:00Z', '1.5'), // before promo expires: promo (2.7778 left)
    use('2026-11-10T09:00:00Z', '0.7'), // after promo expired, its rest notwithstanding: paid
  ];
  const draft = buildInvoiceLines('2026-11', [row('2026-10', '3.3332'), row('2026-11', '2.2')]);
  const d = applyCreditsToInvoice(draft, grants, usage);

  it('draws each piece of usage from the grants effective when it happened', () => {
    expect(credits(d)).toEqual([
      ['credit:2026-10:promo', '-2.2222', -222n, 'Promotional credit promo (usage from Oct 2026)'],
      ['credit:2026-11:promo', '-1.5', -150n, 'Promotional credit promo, Nov 2026'],
      ['credit:2026-11:paid', '-0.7', -70n, 'Prepaid credit paid, Nov 2026'],
    ]);
    expect(costUnitsToString(d.uncoveredUnits)).toBe('1.111');
  });

  it('is exact: the exact total is the usage less the allocations, the cents the sum of the rounded lines', () => {
    expect(d.totalExactUsd.toFixed()).toBe(usd('3.3332').plus('2.2').minus('2.2222').minus('1.5').minus('0.7').toFixed());
    expect(d.totalMinor).toBe(333n + 220n - 222n - 150n - 70n);
    expect(d.totalMinor).toBe(d.lines.reduce((s, l) => s + l.amountMinor, 0n));
    expect(d.consumption.map((c) => -c.amountMinor)).toEqual(d.creditLines.map((l) => l.amountMinor));
  });

  it('refuses usage from after the invoice period, and a draft that has credit lines already', () => {
    expect(() => applyCreditsToInvoice(draft, grants, [use('2026-12-01T00:00:00Z', '1')])).toThrow(ValidationError);
    expect(() => applyCreditsToInvoice(d, grants, usage)).toThrow(ValidationError);
  });
});
