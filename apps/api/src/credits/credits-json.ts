import { z } from 'zod';
import { CREDIT_CATEGORIES } from '@tokenmeter/billing';
import { CREDIT_ENTRY_KINDS, type CreditLedgerEntryRecord } from '@tokenmeter/db';
import type { CreditBalances, CreditGrantBalance } from '@tokenmeter/limits';
import { dateTime, pageOf, signedUsdAmount, usdAmount } from '../common/response-fields';

/** A grant with its balances, as the admin routes, GET /v1/credits and the dashboard show it (docs/credits.md). */
export const CreditGrantSchema = z
  .object({
    id: z.string(),
    account_id: z.string(),
    amount_usd: usdAmount.describe('What the grant gave'),
    category: z.enum(CREDIT_CATEGORIES),
    priority: z.number().int().describe('Lower burns first'),
    effective_at: dateTime,
    expires_at: dateTime.nullable().describe('Exclusive: usage at or after it is not covered; null: never expires'),
    models: z.array(z.string()).describe('The models it pays for; empty: every model'),
    idempotency_key: z.string(),
    status: z.enum(['active', 'pending_payment', 'voided']),
    state: z
      .enum(['usable', 'scheduled', 'expired', 'voided', 'pending_payment'])
      .describe('usable: pays for usage occurring now; scheduled: effective_at is ahead; expired: expires_at has passed'),
    stripe_invoice_id: z.string().nullable().describe('The Stripe invoice a paid top-up was sold on'),
    voided_at: dateTime.nullable(),
    created_at: dateTime,
    ledger_balance_usd: signedUsdAmount.describe('The sum of its ledger entries (grant, consumption on invoices, reversal, expiry, void)'),
    pending_usd: usdAmount.describe('What usage not invoiced yet draws on it: the next invoice consumes it'),
    available_usd: usdAmount.describe('ledger_balance_usd - pending_usd: what is left to burn, up to date with the last stored usage'),
  })
  .strict();
export type CreditGrantJson = z.input<typeof CreditGrantSchema>;

export const CreditBalancesSchema = z
  .object({
    account_id: z.string(),
    as_of: dateTime.describe('Every usage event stored before this instant is counted'),
    grants: z.array(CreditGrantSchema).describe('Every grant of the account, oldest first'),
    totals: z
      .object({
        ledger_balance_usd: signedUsdAmount,
        pending_usd: usdAmount,
        available_usd: usdAmount.describe('Left on every grant, expired ones included (what uninvoiced usage from before their expiry may still burn)'),
        usable_usd: usdAmount.describe('Left on the grants usable now: what new usage can burn'),
      })
      .strict(),
  })
  .strict();
export type CreditBalancesJson = z.input<typeof CreditBalancesSchema>;

export const CreditEntrySchema = z
  .object({
    id: z.string(),
    grant_id: z.string(),
    kind: z.enum(CREDIT_ENTRY_KINDS).describe('grant (+), consumption (- on an invoice), reversal (+, an invoice voided), expiry (-), void (-)'),
    amount_usd: signedUsdAmount,
    invoice_id: z.string().nullable(),
    service_period: z.string().nullable().describe('The month of the usage a consumption paid for'),
    created_at: dateTime,
  })
  .strict();
export type CreditEntryJson = z.input<typeof CreditEntrySchema>;
export const CreditEntryPageSchema = pageOf(CreditEntrySchema);
export type CreditEntryPageJson = z.input<typeof CreditEntryPageSchema>;

export function creditGrantJson(v: CreditGrantBalance): CreditGrantJson {
  const g = v.grant;
  return {
    id: g.id,
    account_id: g.accountId,
    amount_usd: g.amountUsd,
    category: g.category,
    priority: g.priority,
    effective_at: g.effectiveAt.toISOString(),
    expires_at: g.expiresAt?.toISOString() ?? null,
    models: g.models,
    idempotency_key: g.idempotencyKey,
    status: g.status,
    state: v.state,
    stripe_invoice_id: g.stripeInvoiceId,
    voided_at: g.voidedAt?.toISOString() ?? null,
    created_at: g.createdAt.toISOString(),
    ledger_balance_usd: v.ledgerBalanceUsd,
    pending_usd: v.pendingUsd,
    available_usd: v.availableUsd,
  };
}

export function creditBalancesJson(b: CreditBalances): CreditBalancesJson {
  return {
    account_id: b.accountId,
    as_of: b.asOf.toISOString(),
    grants: b.grants.map(creditGrantJson),
    totals: {
      ledger_balance_usd: b.totals.ledgerBalanceUsd,
      pending_usd: b.totals.pendingUsd,
      available_usd: b.totals.availableUsd,
      usable_usd: b.totals.usableUsd,
    },
  };
}

export function creditEntryJson(e: CreditLedgerEntryRecord): CreditEntryJson {
  return {
    id: e.id,
    grant_id: e.grantId,
    kind: e.kind,
    amount_usd: e.amountUsd,
    invoice_id: e.invoiceId,
    service_period: e.servicePeriod,
    created_at: e.createdAt.toISOString(),
  };
}
