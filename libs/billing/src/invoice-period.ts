import { ValidationError } from './errors';

/**
 * A billing period is a calendar month in UTC, written 'YYYY-MM'. Start is inclusive, end is
 * exclusive: an event at exactly 2026-12-01T00:00:00.000Z belongs to December, not November.
 */
export interface BillingPeriod {
  period: string;
  start: Date;
  end: Date;
}

/** A billing period: a calendar month in UTC, 'YYYY-MM'. */
export const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function parsePeriod(period: string): BillingPeriod {
  const m = PERIOD.exec(period);
  if (!m) throw new ValidationError('period', `"${String(period).slice(0, 32)}" is not a month like 2026-11`);
  const year = Number(m[1]);
  const month = Number(m[2]) - 1;
  return { period, start: new Date(Date.UTC(year, month, 1)), end: new Date(Date.UTC(year, month + 1, 1)) };
}

export function periodOf(at: Date): string {
  return `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** The month before `period` ('2026-01' -> '2025-12'). */
export function previousPeriod(period: string): string {
  const { start } = parsePeriod(period);
  return periodOf(new Date(start.getTime() - 1));
}

/** 'Nov 2026', as printed on invoice lines. */
export function periodLabel(period: string): string {
  const { start } = parsePeriod(period);
  return `${MONTHS[start.getUTCMonth()]} ${start.getUTCFullYear()}`;
}
