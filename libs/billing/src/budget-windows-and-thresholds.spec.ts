import {
  budgetState,
  budgetWindowEnd,
  budgetWindowStart,
  parseThresholdPercent,
  reachesThreshold,
  thresholdCrossings,
  toCostUnits,
  usd,
  ValidationError,
} from './index';

const u = (amount: string) => toCostUnits(usd(amount));
const pcts = (...p: string[]) => p.map(parseThresholdPercent);

describe('budget windows are calendar UTC', () => {
  it('puts the last millisecond of a day in that day and midnight in the next', () => {
    expect(budgetWindowStart('day', new Date('2026-03-31T23:59:59.999Z')).toISOString()).toBe('2026-03-31T00:00:00.000Z');
    expect(budgetWindowStart('day', new Date('2026-04-01T00:00:00.000Z')).toISOString()).toBe('2026-04-01T00:00:00.000Z');
  });

  it('starts a month on its first day and ends it on the next month, across a year and a leap day', () => {
    expect(budgetWindowStart('month', new Date('2028-02-29T12:00:00Z')).toISOString()).toBe('2028-02-01T00:00:00.000Z');
    expect(budgetWindowEnd('month', new Date('2028-02-01T00:00:00Z'))?.toISOString()).toBe('2028-03-01T00:00:00.000Z');
    expect(budgetWindowEnd('month', new Date('2026-12-01T00:00:00Z'))?.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(budgetWindowEnd('day', new Date('2026-12-31T00:00:00Z'))?.toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('gives a total budget one window that never resets', () => {
    expect(budgetWindowStart('total', new Date('2026-06-15T08:00:00Z')).toISOString()).toBe('1970-01-01T00:00:00.000Z');
    expect(budgetWindowEnd('total', new Date(0))).toBeNull();
  });
});

describe('thresholds', () => {
  it('parses percents exactly and refuses what DECIMAL(7,4) cannot hold', () => {
    expect(parseThresholdPercent('80')).toBe(800000n);
    expect(parseThresholdPercent('99.9999')).toBe(999999n);
    for (const bad of ['0', '100.0001', '101', '1e2', '-5', '50.12345', ' 50']) {
      expect(() => parseThresholdPercent(bad)).toThrow(ValidationError);
    }
  });

  it('counts reaching a threshold exactly as crossing it, to the last unit', () => {
    const limit = u('10');
    expect(reachesThreshold(u('8'), limit, parseThresholdPercent('80'))).toBe(true);
    expect(reachesThreshold(u('8') - 1n, limit, parseThresholdPercent('80'))).toBe(false);
    // 1/3 of a limit that is not divisible: 33.3333% of $1 is $0.333333, no rounding involved.
    expect(reachesThreshold(u('0.333333'), u('1'), parseThresholdPercent('33.3333'))).toBe(true);
    expect(reachesThreshold(u('0.333333') - 1n, u('1'), parseThresholdPercent('33.3333'))).toBe(false);
  });

  it('lists every threshold one move jumps over, lowest first, and the way back down', () => {
    const limit = u('100');
    const t = pcts('100', '50', '80');
    expect(thresholdCrossings(u('10'), u('85'), limit, t)).toEqual([
      { pct: 500000n, direction: 'up' },
      { pct: 800000n, direction: 'up' },
    ]);
    expect(thresholdCrossings(u('85'), u('85'), limit, t)).toEqual([]);
    expect(thresholdCrossings(u('100'), u('79.99'), limit, t)).toEqual([
      { pct: 800000n, direction: 'down' },
      { pct: 1000000n, direction: 'down' },
    ]);
  });

  it('says blocked only for a hard budget whose limit is spent', () => {
    expect(budgetState(u('9.99'), u('10'), 'hard')).toBe('ok');
    expect(budgetState(u('10'), u('10'), 'hard')).toBe('blocked');
    expect(budgetState(u('10'), u('10'), 'soft')).toBe('soft');
  });
});
