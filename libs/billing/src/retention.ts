import { ValidationError } from './errors';
import { parsePeriod, periodOf } from './invoice-period';
import { isMutable, type InvoiceStatus } from './invoice-status';

/**
 * When a month of raw usage events may be dropped (npm run db:retention, docs/operations.md).
 * Rollups, invoices and the event_id dedupe stay; what goes is every read of the month's raw
 * events, so a month may go only once nothing still to be billed or read is in it:
 *
 * - every event is on an invoice: an unclaimed event is late usage the next close would bill, or
 *   unpriced usage waiting for a price;
 * - those invoices are past draft (a draft is rebuilt from the events it claimed) and are of months
 *   older than the ones kept (a kept month's invoice, its reconciliation and its credit allocation
 *   read the events it claimed: late usage of an older month among them);
 * - every account with events in the month has an invoice of that month, past draft ("every
 *   account period is invoiced"): a month with no invoice of its own is read from the rollups,
 *   netted against its claimed events, by the real-time credit balance (credit-usage.repository),
 *   which needs those events.
 */
export interface RawMonthFacts {
  /** 'YYYY-MM', the UTC month. */
  period: string;
  events: number;
  /** Not on any invoice. */
  unclaimedEvents: number;
  /** The invoices (any period: late usage goes on a later one) that claimed the month's events, each distinct pair once. */
  claimingInvoices: readonly { period: string; status: InvoiceStatus }[];
  /** Statuses of the invoices of the month's own period. */
  periodInvoiceStatuses: readonly InvoiceStatus[];
  /** Accounts with events in the month and no invoice of the month at all. */
  accountsWithoutInvoice: number;
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
  const kept = (period: string) => parsePeriod(period).start >= parsePeriod(firstKept).start;
  if (kept(facts.period)) reasons.push(`kept: ${firstKept} and later are kept`);
  if (facts.unclaimedEvents > 0) {
    reasons.push(`${facts.unclaimedEvents} of ${facts.events} events are on no invoice (unbilled late usage, or unpriced)`);
  }
  if (facts.claimingInvoices.some((i) => isMutable(i.status))) reasons.push('some events are on a draft invoice, which is rebuilt from them');
  const keptPeriods = [...new Set(facts.claimingInvoices.map((i) => i.period).filter((p) => p !== facts.period && kept(p)))].sort();
  if (keptPeriods.length > 0) reasons.push(`some events are billed on an invoice of ${keptPeriods.join(', ')}, a month kept, which reads them`);
  if (facts.accountsWithoutInvoice > 0) {
    reasons.push(`${facts.accountsWithoutInvoice} account(s) with events in ${facts.period} have no invoice of ${facts.period}`);
  }
  if (facts.periodInvoiceStatuses.some(isMutable)) reasons.push(`an invoice of ${facts.period} is still a draft`);
  return reasons.length === 0 ? { drop: true } : { drop: false, reasons };
}
