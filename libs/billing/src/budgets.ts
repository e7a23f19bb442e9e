import { ValidationError } from './errors';
import type { CostUnits } from './cost-units';

/**
 * Budgets (docs/limits.md): the pure part. Windows are calendar UTC; amounts are exact cost
 * units (10^-22 USD, cost-units.ts), so a budget compares with the very numbers rollups and
 * invoices sum. The database keeps each budget window's spend; this module says which window an
 * instant belongs to, when it resets, which thresholds a change of spend crosses, and whether a
 * request fits.
 */
export const BUDGET_WINDOWS = ['day', 'month', 'total'] as const;
export type BudgetWindow = (typeof BUDGET_WINDOWS)[number];

export const BUDGET_ENFORCEMENTS = ['hard', 'soft'] as const;
export type BudgetEnforcement = (typeof BUDGET_ENFORCEMENTS)[number];

/** Alert thresholds when none are given, in percent of the limit. */
export const DEFAULT_BUDGET_THRESHOLDS: readonly string[] = ['50', '80', '100'];

/** The one window of a `total` budget starts here. */
export const TOTAL_WINDOW_START = new Date(0);

/** Start of the calendar UTC window holding `at`. */
export function budgetWindowStart(window: BudgetWindow, at: Date): Date {
  switch (window) {
    case 'day':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
    case 'month':
      return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
    case 'total':
      return TOTAL_WINDOW_START;
  }
}

/** When the window starting at `start` ends and the next begins (null: a total budget never resets). */
export function budgetWindowEnd(window: BudgetWindow, start: Date): Date | null {
  switch (window) {
    case 'day':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + 1));
    case 'month':
      return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
    case 'total':
      return null;
  }
}

/** The SQL expression of budgetWindowStart over a timestamptz `hour` and a budgets row `b`. */
export const BUDGET_WINDOW_START_SQL = (hour: string, window: string) =>
  `CASE ${window} WHEN 'day' THEN date_trunc('day', ${hour}, 'UTC') WHEN 'month' THEN date_trunc('month', ${hour}, 'UTC') ELSE 'epoch'::timestamptz END`;

// A threshold is a percent with at most 4 decimals (budgets.thresholds is DECIMAL(7,4)), so it is
// an integer number of 10^-4 percent: exact comparisons need no Decimal.
const PCT_SCALE = 10_000n;
const PERCENT_TEXT = /^\d{1,3}(?:\.\d{1,4})?$/;

/** A threshold percent in 10^-4 percent ("80" -> 800000n); refuses what DECIMAL(7,4) cannot hold or above 100. */
export function parseThresholdPercent(text: string): bigint {
  if (!PERCENT_TEXT.test(text)) throw new ValidationError('thresholds', `${JSON.stringify(text)} is not a percent with at most 4 decimals`);
  const [whole, fraction = ''] = text.split('.');
  const scaled = BigInt(whole) * PCT_SCALE + BigInt(fraction.padEnd(4, '0'));
  if (scaled <= 0n || scaled > 100n * PCT_SCALE) throw new ValidationError('thresholds', `${text} must be above 0 and at most 100`);
  return scaled;
}

/** True when `spend` has reached `pct` (10^-4 percent) of `limit`: spend >= limit x pct / 100. */
export function reachesThreshold(spend: CostUnits, limit: CostUnits, pct: bigint): boolean {
  return spend * 100n * PCT_SCALE >= limit * pct;
}

export interface ThresholdCrossing {
  /** The threshold, in 10^-4 percent (parseThresholdPercent). */
  pct: bigint;
  /** up: spend reached it; down: spend fell back under it (a reprice). */
  direction: 'up' | 'down';
}

/**
 * The thresholds a move of spend from `before` to `after` crosses, lowest first. Reaching a
 * threshold exactly counts as crossing it (100% is crossed when the limit is exactly spent).
 */
export function thresholdCrossings(before: CostUnits, after: CostUnits, limit: CostUnits, thresholds: readonly bigint[]): ThresholdCrossing[] {
  const crossed: ThresholdCrossing[] = [];
  for (const pct of [...thresholds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const was = reachesThreshold(before, limit, pct);
    const is = reachesThreshold(after, limit, pct);
    if (!was && is) crossed.push({ pct, direction: 'up' });
    else if (was && !is) crossed.push({ pct, direction: 'down' });
  }
  return crossed;
}

/** A budget's state for the gateway and the spend-state topic: ok, soft (a soft limit is spent), blocked (a hard one is). */
export type BudgetState = 'ok' | 'soft' | 'blocked';

export function budgetState(spend: CostUnits, limit: CostUnits, enforce: BudgetEnforcement): BudgetState {
  if (spend < limit) return 'ok';
  return enforce === 'hard' ? 'blocked' : 'soft';
}
