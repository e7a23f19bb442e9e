import { z } from 'zod';
import { INVOICE_STATUSES, minorUnitsToUsdString, usd, type InvoiceLineType, type InvoiceStatus } from '@tokenmeter/billing';
import type { InvoiceLineRow, InvoiceRow } from '@tokenmeter/db';
import type { AccountCloseOutcome, CloseSummary, MismatchKind, ReconciliationReport } from '@tokenmeter/invoicing';
import { countString, dateTime, listOf, minorString, signedUsdAmount } from '../common/response-fields';

/** Integer JSON numbers while exact (always, for cents and token counts in practice), else strings. */
const int = (s: string): number | string => (Number.isSafeInteger(Number(s)) ? Number(s) : s);

/** Trims a NUMERIC's trailing zeros: "2.2857000000" -> "2.2857". Money stays a string. */
const dec = (s: string): string => usd(s).toFixed();

/** A value of a closed set read back from a text column: anything else is a bug, said loudly. */
function oneOf<T extends string>(values: readonly T[], value: string, what: string): T {
  if (!(values as readonly string[]).includes(value)) throw new Error(`unknown ${what} "${value}"`);
  return value as T;
}

const STATUSES = INVOICE_STATUSES as [InvoiceStatus, ...InvoiceStatus[]];
const LINE_TYPES = ['input', 'output', 'cache_read', 'cache_write', 'discount', 'credit'] as const satisfies readonly InvoiceLineType[];
const status = z.enum(STATUSES);
const invoiceStatus = (s: string): InvoiceStatus => oneOf(STATUSES, s, 'invoice status');
const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).describe('A calendar month, UTC, e.g. "2026-11"');

/** As `int()` writes it: a JSON integer while exact, else a string of digits (clients must accept both). */
const exactInteger = (description: string) => z.union([z.number().int(), z.string().regex(/^-?\d+$/)]).describe(description);

export const InvoiceLineSchema = z
  .object({
    model: z.string().describe('"" on credit lines'),
    token_type: z
      .enum(LINE_TYPES)
      .describe('discount: the one negative line per (service period, model, discount); credit: one negative line per (credit grant, service period), last'),
    service_period: month.describe('The month the usage happened in; earlier than the invoice period for late usage'),
    quantity: exactInteger('Tokens (0 on discount and credit lines): a JSON integer, or a string of digits past 2^53'),
    unit_price_per_mtok: z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .describe('USD per million tokens, a decimal STRING ("0" on discount and credit lines)'),
    amount_exact_usd: signedUsdAmount,
    amount_minor: exactInteger('amount_exact_usd rounded once, half up, to cents: a JSON integer, or a string of digits past 2^53'),
    description: z.string(),
  })
  .strict();

const INVOICE_FIELDS = {
  id: z.string(),
  account_id: z.string(),
  period: month,
  status: status,
  currency: z.string().describe('ISO 4217, lower case: "usd"'),
  total_minor: exactInteger('What the customer pays, in cents: the sum of the rounded lines. A JSON integer, or a string of digits past 2^53'),
  total_usd: z
    .string()
    .regex(/^-?\d+\.\d{2}$/)
    .describe('total_minor as dollars, e.g. "12.34"'),
  total_exact_usd: signedUsdAmount.describe('The sum of the exact line amounts (= the stored costs of the billed events, less the exact credits applied), unrounded'),
  stripe_invoice_id: z.string().nullable(),
  hosted_invoice_url: z.string().nullable().describe("Stripe's page for the customer, once finalized"),
  finalized_at: dateTime.nullable(),
  paid_at: dateTime.nullable(),
  voided_at: dateTime.nullable(),
  sync_error: z.string().nullable().optional().describe('Admin keys only: why the last Stripe push failed'),
  sync_attempts: z.number().int().nonnegative().optional().describe('Admin keys only: Stripe pushes attempted'),
};

/** An invoice in a list (GET /v1/invoices): no lines. */
export const InvoiceSummarySchema = z.object(INVOICE_FIELDS).strict();
export type InvoiceSummaryJson = z.input<typeof InvoiceSummarySchema>;
export const InvoiceListSchema = listOf(InvoiceSummarySchema);

/** One invoice with its lines (GET /v1/invoices/{id} and the admin invoice actions). */
export const InvoiceSchema = z.object({ ...INVOICE_FIELDS, lines: z.array(InvoiceLineSchema) }).strict();
export type InvoiceJson = z.input<typeof InvoiceSchema>;

/** The public invoice shape; with its lines for GET /v1/invoices/{id}, without them in lists. */
export function invoiceJson(invoice: InvoiceRow, lines: null, opts: { admin: boolean }): InvoiceSummaryJson;
export function invoiceJson(invoice: InvoiceRow, lines: InvoiceLineRow[], opts: { admin: boolean }): InvoiceJson;
export function invoiceJson(invoice: InvoiceRow, lines: InvoiceLineRow[] | null, opts: { admin: boolean }): InvoiceSummaryJson | InvoiceJson {
  return {
    id: invoice.id,
    account_id: invoice.accountId,
    period: invoice.period,
    status: invoiceStatus(invoice.status),
    currency: invoice.currency,
    total_minor: int(invoice.totalMinor),
    total_usd: minorUnitsToUsdString(invoice.totalMinor),
    total_exact_usd: dec(invoice.totalExactUsd),
    ...(lines === null
      ? {}
      : {
          lines: lines.map((l) => ({
            model: l.model,
            token_type: oneOf(LINE_TYPES, l.tokenType, 'invoice line type'),
            service_period: l.servicePeriod,
            quantity: int(l.quantity),
            unit_price_per_mtok: dec(l.unitPricePerMTok),
            amount_exact_usd: dec(l.amountExactUsd),
            amount_minor: int(l.amountMinor),
            description: l.description,
          })),
        }),
    stripe_invoice_id: invoice.stripeInvoiceId,
    hosted_invoice_url: invoice.hostedInvoiceUrl,
    finalized_at: invoice.finalizedAt?.toISOString() ?? null,
    paid_at: invoice.paidAt?.toISOString() ?? null,
    voided_at: invoice.voidedAt?.toISOString() ?? null,
    // Why a push failed is for admins (it can name Stripe internals).
    ...(opts.admin ? { sync_error: invoice.syncError, sync_attempts: invoice.syncAttempts } : {}),
  };
}

const CLOSE_OUTCOMES = ['created', 'updated', 'already_final', 'no_usage', 'resumed'] as const satisfies readonly AccountCloseOutcome[];

/** POST /admin/invoices/close */
export const CloseSummarySchema = z
  .object({
    period: month,
    dry_run: z.boolean().describe('true: nothing was written and nothing went to Stripe'),
    forced: z.boolean().describe('Closed with force although ingestion was not complete past the period end'),
    accounts: z.number().int().nonnegative(),
    created: z.number().int().nonnegative(),
    updated: z.number().int().nonnegative(),
    already_final: z.number().int().nonnegative(),
    finalized: z.number().int().nonnegative(),
    sync_failed: z.number().int().nonnegative(),
    total_minor: z.number().int().describe('Sum of the invoices, in cents'),
    invoices: z.array(
      z
        .object({
          account_id: z.string(),
          outcome: z.enum(CLOSE_OUTCOMES),
          invoice_id: z.string().nullable().describe('null: no usage, or a dry run that would create it'),
          status: status.nullable(),
          claimed_events: z.number().int().nonnegative().describe('Events newly claimed by this run'),
          lines: z.number().int().nonnegative(),
          total_minor: z.number().int(),
          total_exact_usd: signedUsdAmount,
          sync_error: z.string().nullable().describe('Why the Stripe push failed (the invoice is then sync_failed)'),
        })
        .strict(),
    ),
  })
  .strict();
export type CloseSummaryJson = z.input<typeof CloseSummarySchema>;

export function closeSummaryJson(s: CloseSummary): CloseSummaryJson {
  return {
    period: s.period,
    dry_run: s.dryRun,
    forced: s.forced,
    accounts: s.accounts,
    created: s.created,
    updated: s.updated,
    already_final: s.alreadyFinal,
    finalized: s.finalized,
    sync_failed: s.syncFailed,
    total_minor: Number(s.totalMinor),
    invoices: s.results.map((r) => ({
      account_id: r.accountId,
      outcome: r.outcome,
      invoice_id: r.invoiceId,
      status: r.status === null ? null : invoiceStatus(r.status),
      claimed_events: r.claimedEvents,
      lines: r.lines,
      total_minor: Number(r.totalMinor),
      // Stored totals come back from NUMERIC with trailing zeros; answer them as invoiceJson does.
      total_exact_usd: dec(r.totalExactUsd),
      sync_error: r.sync?.error ?? null,
    })),
  };
}

const MISMATCHES = [
  'raw_vs_rollup',
  'invoice_header_vs_lines',
  'invoice_vs_claimed_events',
  'credit_ledger_vs_lines',
  'stripe_total_vs_invoice',
  'stripe_unreachable',
] as const satisfies readonly MismatchKind[];

/** GET /admin/reconciliation (the report of libs/invoicing, already snake_case). */
export const ReconciliationSchema = z
  .object({
    period: month,
    accounts: z.number().int().nonnegative(),
    mismatched_accounts: z.number().int().nonnegative(),
    accounts_detail: z.array(
      z
        .object({
          account_id: z.string(),
          raw_events: countString.describe('Events of the period in usage_events'),
          raw_total_usd: signedUsdAmount,
          rollup_requests: countString.describe('Requests of the period in the hourly rollups (must equal raw_events)'),
          rollup_total_usd: signedUsdAmount.describe('Must equal raw_total_usd'),
          rollup_daily_requests: countString.describe('Requests of the period in the daily rollups (must equal raw_events)'),
          rollup_daily_total_usd: signedUsdAmount.describe('Must equal raw_total_usd'),
          rollup_monthly_requests: countString.describe('Requests of the period in the monthly rollups (must equal raw_events)'),
          rollup_monthly_total_usd: signedUsdAmount.describe('Must equal raw_total_usd'),
          unbilled_usd: signedUsdAmount.describe('Priced usage of the period on no invoice yet (late usage: next invoice)'),
          unpriced_events: countString,
          invoice_id: z.string().nullable(),
          invoice_status: status.nullable(),
          invoice_exact_usd: signedUsdAmount.nullable(),
          invoice_total_minor: minorString.nullable(),
          invoice_credits_minor: minorString.nullable().describe('The sum of its credit lines, in cents (0 or negative)'),
          ledger_credits_usd: signedUsdAmount
            .nullable()
            .describe("Its credit ledger entries, consumption less reversals (negative): must be invoice_credits_minor as dollars, 0 once void"),
          stripe_invoice_id: z.string().nullable(),
          stripe_total_minor: minorString.nullable().describe("Stripe's total; null when not asked (stripe=false), not pushed, or unreachable"),
          mismatches: z.array(z.enum(MISMATCHES)).describe('Empty when everything agrees'),
        })
        .strict(),
    ),
  })
  .strict();
export type ReconciliationJson = z.input<typeof ReconciliationSchema>;

export function reconciliationJson(report: ReconciliationReport): ReconciliationJson {
  return {
    ...report,
    accounts_detail: report.accounts_detail.map((d) => ({
      ...d,
      invoice_status: d.invoice_status === null ? null : invoiceStatus(d.invoice_status),
    })),
  };
}

