import { minorUnitsToUsdString, usd } from '@tokenmeter/billing';
import type { InvoiceLineRow, InvoiceRow } from '@tokenmeter/db';

/** Integer JSON numbers while exact (always, for cents and token counts in practice), else strings. */
const int = (s: string): number | string => (Number.isSafeInteger(Number(s)) ? Number(s) : s);

/** Trims a NUMERIC's trailing zeros: "2.2857000000" -> "2.2857". Money stays a string. */
const dec = (s: string): string => usd(s).toFixed();

/** The public invoice shape of GET /v1/invoices/{id}. */
export function invoiceJson(invoice: InvoiceRow, lines: InvoiceLineRow[] | null, opts: { admin: boolean }) {
  return {
    id: invoice.id,
    account_id: invoice.accountId,
    period: invoice.period,
    status: invoice.status,
    currency: invoice.currency,
    total_minor: int(invoice.totalMinor),
    total_usd: minorUnitsToUsdString(invoice.totalMinor),
    total_exact_usd: dec(invoice.totalExactUsd),
    ...(lines === null
      ? {}
      : {
          lines: lines.map((l) => ({
            model: l.model,
            token_type: l.tokenType,
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
