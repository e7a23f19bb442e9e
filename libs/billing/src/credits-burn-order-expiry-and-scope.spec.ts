import { allocateCredits, boundaryHours, burnOrder, grantCovers, toCostUnits, usd, type CreditPool } from './index';

const u = (amount: string) => toCostUnits(usd(amount));
const at = (iso: string) => new Date(iso);
const pool = (over: Partial<CreditPool> & { id: string }): CreditPool => ({
  category: 'paid',
  priority: 0,
  effectiveAt: at('2026-11-01T00:00:00Z'),
  expiresAt: null,
  models: [],
  createdAt: at('2026-10-01T00:00:00Z'),
  availableUnits: u('10'),
  ...over,
});
const use = (iso: string, amount: string, model = 'deepseek-r1') => ({ at: at(iso), model, costUnits: u(amount), servicePeriod: iso.slice(0, 7) });

describe('burn order: priority, soonest expiry, promotional before paid, oldest', () => {
  it('sorts by each rule in turn', () => {
    const base = pool({ id: 'b' });
    const ids = (ps: CreditPool[]) => [...ps].sort(burnOrder).map((p) => p.id);
    expect(ids([pool({ id: 'low', priority: 5 }), pool({ id: 'high', priority: 1 })])).toEqual(['high', 'low']);
    expect(ids([pool({ id: 'never' }), pool({ id: 'soon', expiresAt: at('2026-12-01T00:00:00Z') }), pool({ id: 'later', expiresAt: at('2027-01-01T00:00:00Z') })])).toEqual([
      'soon',
      'later',
      'never',
    ]);
    expect(ids([pool({ id: 'paid' }), pool({ id: 'promo', category: 'promotional' })])).toEqual(['promo', 'paid']);
    expect(ids([pool({ id: 'new', createdAt: at('2026-11-02T00:00:00Z') }), { ...base, id: 'old' }])).toEqual(['old', 'new']);
  });
});

describe('a grant covers usage while it is effective, for its models', () => {
  it('starts at effective_at and stops exactly at expires_at (exclusive)', () => {
    const g = pool({ id: 'g', effectiveAt: at('2026-11-10T12:00:00.000Z'), expiresAt: at('2026-11-20T08:30:00.000Z') });
    expect(grantCovers(g, at('2026-11-10T11:59:59.999Z'), 'deepseek-r1')).toBe(false);
    expect(grantCovers(g, at('2026-11-10T12:00:00.000Z'), 'deepseek-r1')).toBe(true);
    expect(grantCovers(g, at('2026-11-20T08:29:59.999Z'), 'deepseek-r1')).toBe(true);
    expect(grantCovers(g, at('2026-11-20T08:30:00.000Z'), 'deepseek-r1')).toBe(false);
  });

  it('covers only its models when scoped', () => {
    const g = pool({ id: 'g', models: ['gpt-4o'] });
    expect(grantCovers(g, at('2026-11-15T00:00:00Z'), 'gpt-4o')).toBe(true);
    expect(grantCovers(g, at('2026-11-15T00:00:00Z'), 'deepseek-r1')).toBe(false);
  });
});

describe('allocateCredits', () => {
  it('drains grants in burn order, exactly, and bills what no grant covers', () => {
    const r = allocateCredits(
      [pool({ id: 'paid', availableUnits: u('5') }), pool({ id: 'promo', category: 'promotional', availableUnits: u('1.0000000001') })],
      [use('2026-11-03T10:00:00Z', '0.5'), use('2026-11-02T10:00:00Z', '6.0000000002')],
    );
    // Oldest usage first: the 6.0000000002 takes promo's 1.0000000001 (promotional burns first) and all
    // 5 of paid; 0.0000000001 of it and the later 0.5 are left for the invoice.
    expect(r.allocations).toEqual([
      { grantId: 'promo', servicePeriod: '2026-11', units: u('1.0000000001') },
      { grantId: 'paid', servicePeriod: '2026-11', units: u('5') },
    ]);
    expect(r.remaining.get('paid')).toBe(0n);
    expect(r.uncoveredUnits).toBe(u('0.5000000001'));
  });

  it('leaves usage after expiry and outside the scope to the invoice, and keeps service periods apart', () => {
    const r = allocateCredits(
      [pool({ id: 'g', effectiveAt: at('2026-10-15T00:00:00Z'), expiresAt: at('2026-11-15T00:00:00Z'), models: ['deepseek-r1'] })],
      [use('2026-10-20T00:00:00Z', '1'), use('2026-11-14T23:59:59.999Z', '2'), use('2026-11-15T00:00:00Z', '4'), use('2026-11-01T00:00:00Z', '8', 'gpt-4o')],
    );
    expect(r.allocations).toEqual([
      { grantId: 'g', servicePeriod: '2026-10', units: u('1') },
      { grantId: 'g', servicePeriod: '2026-11', units: u('2') },
    ]);
    expect(r.remaining.get('g')).toBe(u('7'));
    expect(r.uncoveredUnits).toBe(u('12'));
  });

  it('never takes a grant below zero nor changes the total', () => {
    const r = allocateCredits([pool({ id: 'a', availableUnits: 3n }), pool({ id: 'b', availableUnits: 0n })], [use('2026-11-02T00:00:00Z', '0')]);
    expect(r.allocations).toEqual([]);
    const s = allocateCredits([pool({ id: 'a', availableUnits: 3n })], [{ ...use('2026-11-02T00:00:00Z', '0'), costUnits: 10n }]);
    expect(s.allocations[0].units + s.uncoveredUnits).toBe(10n);
    expect(s.remaining.get('a')).toBe(0n);
  });
});

describe('boundaryHours', () => {
  it('lists the hours a grant starts or ends inside, not those it starts or ends on', () => {
    const hours = boundaryHours([pool({ id: 'g', effectiveAt: at('2026-11-01T00:00:00Z'), expiresAt: at('2026-11-20T08:30:00Z') })]);
    expect([...hours].map((h) => new Date(h).toISOString())).toEqual(['2026-11-20T08:00:00.000Z']);
  });
});
