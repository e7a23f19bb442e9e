import {
  applyCreditsToInvoice,
  minorUnitsToUsdString,
  periodOf,
  toCostUnits,
  usd,
  ZERO,
  type BillingPeriod,
  type CreditedInvoiceDraft,
  type CreditPool,
  type Decimal,
  type InvoiceDraft,
} from '@tokenmeter/billing';
import {
  creditTermsOf,
  type CreditGrantRecord,
  type CreditGrantsRepository,
  type CreditLedgerRepository,
  type CreditUsageRepository,
  type NewCreditLedgerEntry,
  type Queryable,
  type UsageEventClaimsRepository,
} from '@tokenmeter/db';

/** What a close did to the ledger: the entries it appended, and the credits on the invoice. */
export interface CloseCreditsResult {
  draft: CreditedInvoiceDraft;
  entries: NewCreditLedgerEntry[];
}

/**
 * Credits on invoices (docs/credits.md, "On the invoice"): the part of the close, the void and the
 * reconciliation that touches the ledger. Every method runs in the caller's transaction.
 *
 * The close, under the (account, period) invoice lock, after the claim:
 *   1. locks the account's grants (FOR UPDATE, id order), so a close of another month, or a
 *      grant's void or activation, waits: a balance is never allocated twice;
 *   2. pools = each grant's ledger balance + what THIS invoice already consumed of it (a rebuilt
 *      draft may keep what it had; its own entries are already in the balance);
 *   3. allocates the invoice's claimed usage (CreditUsageRepository, with invoiceId) and builds
 *      the credit lines (applyCreditsToInvoice);
 *   4. appends the difference per (grant, service period) between the new lines' cents and this
 *      invoice's net consumption so far: a `consumption` for more, a `reversal` for less, nothing
 *      when nothing changed. So closing twice, or concurrently, consumes a grant once;
 *   5. expiry: see expireGrants.
 */
export class InvoiceCredits {
  constructor(
    private readonly grants: CreditGrantsRepository,
    private readonly ledger: CreditLedgerRepository,
    private readonly usage: CreditUsageRepository,
    private readonly claims: UsageEventClaimsRepository,
  ) {}

  async applyAtClose(q: Queryable, accountId: string, invoiceId: string, bounds: BillingPeriod, draft: InvoiceDraft): Promise<CloseCreditsResult> {
    const grants = await this.grants.lockAccountGrants(accountId, q);
    if (grants.length === 0) return { draft: applyCreditsToInvoice(draft, [], []), entries: [] };
    const [balances, consumed] = await Promise.all([this.ledger.balances(grants.map((g) => g.id), q), this.netConsumption(q, invoiceId)]);
    const consumedByGrant = new Map<string, Decimal>();
    for (const [key, amount] of consumed) {
      const grantId = key.split('\u0000')[0];
      consumedByGrant.set(grantId, (consumedByGrant.get(grantId) ?? ZERO).plus(amount));
    }
    const pools: CreditPool[] = [];
    for (const g of grants) {
      const available = usd(balances.get(g.id) ?? '0').plus(consumedByGrant.get(g.id) ?? ZERO);
      if (available.gt(0)) pools.push({ ...creditTermsOf(g), availableUnits: toCostUnits(available, 'ledger balance') });
    }
    const usage = pools.length === 0 ? [] : await this.usage.creditUsage(accountId, { grants: pools, invoiceId }, q);
    const credited = applyCreditsToInvoice(draft, pools, usage);

    const target = new Map<string, Decimal>();
    for (const c of credited.consumption) target.set(key(c.grantId, c.servicePeriod), usd(minorUnitsToUsdString(c.amountMinor)));
    const entries: NewCreditLedgerEntry[] = [];
    for (const k of [...new Set([...consumed.keys(), ...target.keys()])].sort()) {
      const delta = (target.get(k) ?? ZERO).minus(consumed.get(k) ?? ZERO);
      if (delta.isZero()) continue;
      const [grantId, servicePeriod] = k.split('\u0000');
      entries.push({
        accountId,
        grantId,
        kind: delta.gt(0) ? 'consumption' : 'reversal',
        amountUsd: delta.negated().toFixed(),
        invoiceId,
        servicePeriod,
      });
    }
    await this.ledger.append(entries, q);
    entries.push(...(await this.expireGrants(q, accountId, grants, bounds)));
    return { draft: credited, entries };
  }

  /**
   * Expiry: a grant whose expires_at is before the end of the month being closed (the month that
   * holds expires_at, or any later one), once no priced usage from [effective_at, expires_at) of its
   * models is left unclaimed (this close has just claimed its month's), loses what is left: one
   * `expiry` entry for the rest of its ledger balance. Nothing else could ever draw on it: later
   * usage is outside its window, and late usage from inside the window that arrives after this is
   * billed as usual (docs/credits.md). Idempotent: the balance is 0 afterwards; a reversal after
   * it (an invoice voided) is expired by the next close of the account.
   */
  private async expireGrants(q: Queryable, accountId: string, grants: readonly CreditGrantRecord[], bounds: BillingPeriod): Promise<NewCreditLedgerEntry[]> {
    const expiring = grants.filter((g) => g.status !== 'pending_payment' && g.expiresAt !== null && g.expiresAt.getTime() < bounds.end.getTime());
    if (expiring.length === 0) return [];
    const balances = await this.ledger.balances(expiring.map((g) => g.id), q);
    const entries: NewCreditLedgerEntry[] = [];
    for (const g of expiring) {
      const rest = usd(balances.get(g.id) ?? '0');
      if (!rest.gt(0)) continue;
      if (await this.claims.hasUnbilledUsage(q, accountId, { from: g.effectiveAt, to: g.expiresAt!, models: g.models })) continue;
      entries.push({ accountId, grantId: g.id, kind: 'expiry', amountUsd: rest.negated().toFixed(), invoiceId: null, servicePeriod: periodOf(g.expiresAt!) });
    }
    await this.ledger.append(entries, q);
    return entries;
  }

  /** Voiding an invoice: a `reversal` for each (grant, service period) it still consumes. Idempotent. */
  async reverseInvoice(q: Queryable, accountId: string, invoiceId: string): Promise<NewCreditLedgerEntry[]> {
    const consumed = await this.netConsumption(q, invoiceId);
    const entries: NewCreditLedgerEntry[] = [];
    for (const [k, amount] of [...consumed].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!amount.gt(0)) continue;
      const [grantId, servicePeriod] = k.split('\u0000');
      entries.push({ accountId, grantId, kind: 'reversal', amountUsd: amount.toFixed(), invoiceId, servicePeriod });
    }
    await this.ledger.append(entries, q);
    return entries;
  }

  /** What an invoice consumes net (consumption - reversals), per (grant, service period), positive. */
  private async netConsumption(q: Queryable, invoiceId: string): Promise<Map<string, Decimal>> {
    const net = new Map<string, Decimal>();
    for (const e of await this.ledger.listInvoiceEntries(invoiceId, q)) {
      if (e.kind !== 'consumption' && e.kind !== 'reversal') continue;
      const k = key(e.grantId, e.servicePeriod ?? '');
      net.set(k, (net.get(k) ?? ZERO).minus(e.amountUsd));
    }
    return net;
  }
}

const key = (grantId: string, servicePeriod: string) => `${grantId}\u0000${servicePeriod}`;


