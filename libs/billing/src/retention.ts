import { ValidationError } from './errors';
import { parsePeriod, periodOf } from './invoice-period';
import { isMutable, type InvoiceStatus } from './invoice-status';

/**
 * When a month of raw usage events may be dropped (npm run db:retention, docs/operations.md).
 * Dropping raw events is safe only once nothing can bill them again or bill them differently:
 * rollups, invoices and the event_id dedupe stay, but a draft invoice is rebuilt from the raw
 * events it claimed, and an unclaimed event is usage nobody has billed yet.
 */
export interface RawMonthFacts {
  /** 'YYYY-MM', the UTC month. */
  period: string;
  events: number;
  /** Not on any invoice: late usage the next close would bill, or unpriced usage awaiting a price. */
  unclaimedEvents: number;
  /** Statuses of the invoices (any period: late usage goes on a later one) that claimed the month's events. */
  claimingInvoiceStatuses: readonly InvoiceStatus[];
  /** Statuses of the invoices of the month's own period. */
  periodInvoiceStatuses: readonly InvoiceStatus[];
}

export type RetentionVerdict = { drop: true } | { drop: false; reasons: string[] };

/**
 * The oldest month `--keep-months N` keeps: the current UTC month and the N before it are kept,
 * whatever their invoices say. N >= 1, so last month's late events are never at stake.
 */
export function firstKeptPeriod(now: Date, keepMonths: number): string {
  if (!Number.isInteger(keepMonths) || keepMonths < 1) {
    throw new ValidationError('keep_months', `--keep-months must be a whole number of months, at least 1 (got ${keepMonths})`);
  }
  return periodOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - keepMonths, 1)));
}

/** Whether the month's raw events may be dropped, and if not, every reason why. */
export function retentionVerdict(facts: RawMonthFacts, firstKept: string): RetentionVerdict {
  const reasons: string[] = [];
  if (parsePeriod(facts.period).start >= parsePeriod(firstKept).start) reasons.push(`kept: ${firstKept} and later are kept`);
  if (facts.unclaimedEvents > 0) {
    reasons.push(`${facts.unclaimedEvents} of ${facts.events} events are on no invoice (unbilled late usage, or unpriced)`);
  }
  const draftClaims = facts.claimingInvoiceStatuses.filter(isMutable);
  if (draftClaims.length > 0) reasons.push('some events are on a draft invoice, which is rebuilt from them');
  if (facts.periodInvoiceStatuses.some(isMutable)) reasons.push(`an invoice of ${facts.period} is still a draft`);
  return reasons.length === 0 ? { drop: true } : { drop: false, reasons };
}
