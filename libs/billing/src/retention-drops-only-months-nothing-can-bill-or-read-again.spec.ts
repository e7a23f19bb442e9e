import { ValidationError } from './errors';
import { firstKeptPeriod, retentionVerdict, type RawMonthFacts } from './retention';

const billed: RawMonthFacts = {
  period: '2026-08',
  events: 120,
  unclaimedEvents: 0,
  claimingInvoices: [
    { period: '2026-08', status: 'finalized' },
    { period: '2026-08', status: 'paid' },
  ],
  periodInvoiceStatuses: ['finalized', 'paid', 'void'],
  accountsWithoutInvoice: 0,
};

describe('retention drops only months nothing can bill or read again', () => {
  it('keeps the current month and the N before it', () => {
    expect(firstKeptPeriod(new Date('2026-12-02T03:00:00Z'), 3)).toBe('2026-09');
    expect(firstKeptPeriod(new Date('2026-12-31T23:59:59.999Z'), 1)).toBe('2026-11');
    expect(firstKeptPeriod(new Date('2027-01-01T00:00:00Z'), 1)).toBe('2026-12');
    expect(firstKeptPeriod(new Date('2026-02-15T00:00:00Z'), 14)).toBe('2024-12');
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses --keep-months %p', (n) => {
    expect(() => firstKeptPeriod(new Date('2026-12-02T00:00:00Z'), n)).toThrow(ValidationError);
  });

  it('drops a month whose events are all on its own invoices, past draft', () => {
    expect(retentionVerdict(billed, '2026-09')).toEqual({ drop: true });
  });

  it('drops a month whose late usage went on a later invoice that is itself older than the months kept', () => {
    expect(retentionVerdict({ ...billed, claimingInvoices: [...billed.claimingInvoices, { period: '2026-09', status: 'finalized' }] }, '2026-10')).toEqual({
      drop: true,
    });
  });

  it('drops an empty month (e.g. one a new late event made and nothing else)', () => {
    expect(retentionVerdict({ ...billed, events: 0, claimingInvoices: [], periodInvoiceStatuses: [] }, '2026-09')).toEqual({ drop: true });
  });

  it('keeps a month that is not old enough, whatever its invoices', () => {
    expect(retentionVerdict(billed, '2026-08')).toEqual({ drop: false, reasons: ['kept: 2026-08 and later are kept'] });
  });

  it('keeps a month with unbilled or unpriced events', () => {
    expect(retentionVerdict({ ...billed, unclaimedEvents: 3 }, '2026-09')).toEqual({
      drop: false,
      reasons: ['3 of 120 events are on no invoice (unbilled late usage, or unpriced)'],
    });
  });

  it('keeps a month whose events a draft claimed, and one whose late usage is on the invoice of a month kept', () => {
    const late = { ...billed, claimingInvoices: [...billed.claimingInvoices, { period: '2026-11', status: 'draft' as const }] };
    expect(retentionVerdict(late, '2026-10')).toEqual({
      drop: false,
      reasons: ['some events are on a draft invoice, which is rebuilt from them', 'some events are billed on an invoice of 2026-11, a month kept, which reads them'],
    });
  });

  it('keeps a month an account has no invoice of (its only usage there was late, billed on a later invoice)', () => {
    expect(retentionVerdict({ ...billed, accountsWithoutInvoice: 2 }, '2026-10')).toEqual({
      drop: false,
      reasons: ['2 account(s) with events in 2026-08 have no invoice of 2026-08'],
    });
  });

  it('keeps a month whose own period still has a draft, and lists every reason', () => {
    expect(retentionVerdict({ ...billed, unclaimedEvents: 1, periodInvoiceStatuses: ['draft', 'finalized'] }, '2026-09')).toEqual({
      drop: false,
      reasons: ['1 of 120 events are on no invoice (unbilled late usage, or unpriced)', 'an invoice of 2026-08 is still a draft'],
    });
  });

  it('treats every status past draft as closed: finalizing, sync_failed, void and uncollectible too', () => {
    const closed = ['finalizing', 'sync_failed', 'finalized', 'paid', 'void', 'uncollectible'] as const;
    const facts = { ...billed, claimingInvoices: closed.map((status) => ({ period: '2026-08', status })), periodInvoiceStatuses: closed };
    expect(retentionVerdict(facts, '2026-09')).toEqual({ drop: true });
  });
});
