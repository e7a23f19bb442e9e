import { parseCostUnits, type CreditPool } from '@tokenmeter/billing';
import { coveringUnits } from './credits.service';

const pool = (over: Partial<CreditPool> & { id: string; availableUnits: bigint }): CreditPool => ({
  category: 'paid',
  priority: 0,
  effectiveAt: new Date('2026-12-01T00:00:00.000Z'),
  expiresAt: null,
  models: [],
  createdAt: new Date('2026-11-01T00:00:00.000Z'),
  ...over,
});

describe('coveringUnits: what a prepaid-only account can burn on a model at an instant', () => {
  const a = pool({ id: 'a', availableUnits: parseCostUnits('1'), expiresAt: new Date('2026-12-10T12:00:00.000Z') });
  const b = pool({ id: 'b', availableUnits: parseCostUnits('0.25'), models: ['gpt-4o'] });
  const c = pool({ id: 'c', availableUnits: parseCostUnits('0.5'), effectiveAt: new Date('2026-12-05T00:00:00.000Z') });

  it('sums the pools covering the model at that instant: expires_at exclusive, effective_at inclusive', () => {
    expect(coveringUnits([a, b, c], new Date('2026-12-04T23:59:59.999Z'), 'gpt-4o')).toBe(parseCostUnits('1.25'));
    expect(coveringUnits([a, b, c], new Date('2026-12-05T00:00:00.000Z'), 'gpt-4o')).toBe(parseCostUnits('1.75'));
    expect(coveringUnits([a, b, c], new Date('2026-12-10T11:59:59.999Z'), 'deepseek-r1')).toBe(parseCostUnits('1.5'));
    expect(coveringUnits([a, b, c], new Date('2026-12-10T12:00:00.000Z'), 'deepseek-r1')).toBe(parseCostUnits('0.5'));
  });

  it('is 0 with no pools, or none covering', () => {
    expect(coveringUnits([], new Date('2026-12-05T00:00:00.000Z'), 'gpt-4o')).toBe(0n);
    expect(coveringUnits([b], new Date('2026-12-05T00:00:00.000Z'), 'deepseek-r1')).toBe(0n);
    expect(coveringUnits([a], new Date('2026-11-30T23:59:59.999Z'), 'gpt-4o')).toBe(0n);
  });
});
