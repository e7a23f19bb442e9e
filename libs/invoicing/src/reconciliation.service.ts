import pLimit from 'p-limit';
import { Decimal, parsePeriod, usd, ZERO } from '@tokenmeter/billing';
import type { ReconciliationRepository, ReconciliationRow } from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';

export type MismatchKind =
  | 'raw_vs_rollup'
  | 'invoice_header_vs_lines'
  | 'invoice_vs_claimed_events'
  | 'credit_ledger_vs_lines'
  | 'stripe_total_vs_invoice'
  | 'stripe_unreachable';

export interface AccountReconciliation {
  account_id: string;
  raw_events: string;
  raw_total_usd: string;
  rollup_requests: string;
  rollup_total_usd: string;
  /** The same from the day rollups (usage_daily) and month rollups (usage_monthly): every grain must equal the raw events. */
  rollup_daily_requests: string;
  rollup_daily_total_usd: string;
  rollup_monthly_requests: string;
  rollup_monthly_total_usd: string;
  /** Priced usage of the period not on any invoice yet (arrived after its invoice was final: next invoice). */
  unbilled_usd: string;
  unpriced_events: string;
  invoice_id: string | null;
  invoice_status: string | null;
  invoice_exact_usd: string | null;
  invoice_total_minor: string | null;
  /** Its credit lines, in cents (negative), and what its ledger entries (consumption - reversals) took from grants, USD. */
  invoice_credits_minor: string | null;
  ledger_credits_usd: string | null;
  stripe_invoice_id: string | null;
  stripe_total_minor: string | null;
  mismatches: MismatchKind[];
}

export interface ReconciliationReport {
  period: string;
  accounts: number;
  mismatched_accounts: number;
  accounts_detail: AccountReconciliation[];
}

/**
 * Proves an invoice from stored events: per account, raw events and the rollups (hourly, daily
 * and monthly) must agree exactly; the invoice header must equal the sum of its lines (exact and rounded), and its exact
 * total the stored costs of the events it claimed; Stripe's total must equal our rounded total.
 * (The invoice may also carry late usage of earlier months, so it is compared with its claimed
 * events, not with this month's raw total; this month's events not on it show as unbilled.)
 * Credits: the invoice's exact total less its credit lines is its claimed events' cost, and its
 * credit ledger entries (consumption - reversals) are exactly its credit lines' cents.
 */
export class ReconciliationService {
  constructor(
    private readonly repository: ReconciliationRepository,
    private readonly stripe: StripeGateway | undefined,
  ) {}

  async reconcile(period: string, opts: { accountId?: string; withStripe?: boolean } = {}): Promise<ReconciliationReport> {
    const bounds = parsePeriod(period);
    const rows = await this.repository.reconcile(bounds, opts.accountId);
    const detail = rows.map(toDetail);
    if (this.stripe && (opts.withStripe ?? true)) {
      const stripe = this.stripe;
      const limit = pLimit(10);
      await Promise.all(
        detail
          .filter((d) => d.stripe_invoice_id)
          .map((d) =>
            limit(async () => {
              try {
                const inv = await stripe.retrieveInvoice(d.stripe_invoice_id!);
                d.stripe_total_minor = inv.totalMinor.toString();
                if (d.invoice_total_minor !== null && inv.totalMinor !== BigInt(d.invoice_total_minor)) d.mismatches.push('stripe_total_vs_invoice');
              } catch {
                d.mismatches.push('stripe_unreachable');
              }
            }),
          ),
      );
    }
    return {
      period,
      accounts: detail.length,
      mismatched_accounts: detail.filter((d) => d.mismatches.length > 0).length,
      accounts_detail: detail,
    };
  }
}

function toDetail(r: ReconciliationRow): AccountReconciliation {
  const mismatches: MismatchKind[] = [];
  // "The rollups" are every grain: a day or month table off from the hours is as wrong as hours off from events.
  const rollupsAgree = [
    [r.rollupCostUsd, r.rollupRequests],
    [r.dailyCostUsd, r.dailyRequests],
    [r.monthlyCostUsd, r.monthlyRequests],
  ].every(([cost, requests]) => usd(r.rawCostUsd).equals(usd(cost)) && r.rawEvents === requests);
  if (!rollupsAgree) mismatches.push('raw_vs_rollup');
  if (r.invoiceId) {
    if (!usd(r.invoiceTotalExactUsd!).equals(usd(r.invoiceLinesExactUsd!)) || r.invoiceTotalMinor !== r.invoiceLinesMinor) {
      mismatches.push('invoice_header_vs_lines');
    }
    // Credits are the one thing on an invoice that is not usage: usage lines + credit lines = total.
    if (!usd(r.invoiceTotalExactUsd!).minus(usd(r.invoiceCreditExactUsd!)).equals(usd(r.invoiceClaimedCostUsd!))) mismatches.push('invoice_vs_claimed_events');
    // The ledger took exactly the credit lines' cents from the grants (a void invoice: all given back).
    const expected = r.invoiceStatus === 'void' ? ZERO : new Decimal(r.invoiceCreditMinor!).dividedBy(100);
    if (!usd(r.invoiceLedgerCreditUsd!).equals(expected)) mismatches.push('credit_ledger_vs_lines');
  }
  return {
    account_id: r.accountId,
    raw_events: r.rawEvents,
    raw_total_usd: trim(r.rawCostUsd),
    rollup_requests: r.rollupRequests,
    rollup_total_usd: trim(r.rollupCostUsd),
    rollup_daily_requests: r.dailyRequests,
    rollup_daily_total_usd: trim(r.dailyCostUsd),
    rollup_monthly_requests: r.monthlyRequests,
    rollup_monthly_total_usd: trim(r.monthlyCostUsd),
    unbilled_usd: trim(r.unbilledCostUsd),
    unpriced_events: r.unpricedEvents,
    invoice_id: r.invoiceId,
    invoice_status: r.invoiceStatus,
    invoice_exact_usd: r.invoiceTotalExactUsd === null ? null : trim(r.invoiceTotalExactUsd),
    invoice_total_minor: r.invoiceTotalMinor,
    invoice_credits_minor: r.invoiceCreditMinor,
    ledger_credits_usd: r.invoiceLedgerCreditUsd === null ? null : trim(r.invoiceLedgerCreditUsd),
    stripe_invoice_id: r.stripeInvoiceId,
    stripe_total_minor: null,
    mismatches,
  };
}

const trim = (s: string) => usd(s).toFixed();
