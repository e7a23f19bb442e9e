import { costUnitsToString, type CostUnits } from './cost-units';
import { allocateCredits, burnOrder, type CreditCategory, type CreditPool, type CreditUsage } from './credits';
import { ValidationError } from './errors';
import type { InvoiceDraft, InvoiceLineDraft } from './invoice';
import { parsePeriod, periodLabel } from './invoice-period';
import { Decimal, ZERO, toMinorUnits, usd } from './money';

/** Cost units (10^-22 USD) in one cent. */
const UNITS_PER_CENT = 10n ** 20n;

/** A credit line: the grant it applies is part of its identity. */
export interface InvoiceCreditLineDraft extends InvoiceLineDraft {
  tokenType: 'credit';
  grantId: string;
  category: CreditCategory;
}

/** What the ledger consumes from one grant for one service period on this invoice: the credit line's cents, positive. */
export interface CreditConsumption {
  grantId: string;
  servicePeriod: string;
  amountMinor: bigint;
}

export interface CreditedInvoiceDraft extends InvoiceDraft {
  creditLines: InvoiceCreditLineDraft[];
  /** One per credit line, same order: the consumption entries the close writes. */
  consumption: CreditConsumption[];
  /** Claimed usage no grant covered (billed as usual), exact units. */
  uncoveredUnits: CostUnits;
}

/** `credit:<service period>:<grant id>` */
export function creditLineKey(servicePeriod: string, grantId: string): string {
  return `credit:${servicePeriod}:${grantId}`;
}

/** The grant id back from a credit line's key (Stripe metadata, reconciliation), or undefined for any other line. */
export function grantIdOfLineKey(lineKey: string): string | undefined {
  const m = /^credit:\d{4}-\d{2}:(.+)$/.exec(lineKey);
  return m?.[1];
}

/**
 * Applies credits to an invoice built by buildInvoiceLines (docs/credits.md, "On the invoice").
 *
 * - `pools`: the account's grants, each with what the ledger holds for THIS invoice to use (its
 *   ledger balance at close, plus whatever this invoice already consumed when a draft is rebuilt).
 * - `usage`: the invoice's claimed usage as allocation pieces (rollup hours and boundary-hour events).
 *
 * allocateCredits burns the usage oldest first; each (grant, service period) with an allocation
 * becomes one negative line, after every usage and discount line, ordered by the grant's burn
 * order, then service period. Its exact amount is -(allocated units); its cents are that rounded
 * once, half up (toMinorUnits). Two caps apply to the rounded cents, both by reducing lines from
 * the end (the last in burn order first), never by rounding differently:
 *
 *  1. a grant never gives more cents than its pool holds (rounding several service periods' lines
 *     up could otherwise take a cent more than the balance: 0.505 + 0.495 of a $1.00 grant);
 *  2. the TOTAL FLOOR: the invoice total (sum of the rounded lines) never goes below zero.
 *
 * A line reduced by a cap states what it applies: its exact amount becomes its cents. A line with
 * 0 cents (an allocation under half a cent, or one the floor took to zero) is left out: it would
 * apply nothing and consume nothing, so its grant keeps that sub-cent amount.
 * The ledger consumes exactly each line's cents (`consumption`).
 */
export function applyCreditsToInvoice(draft: InvoiceDraft, pools: readonly CreditPool[], usage: readonly CreditUsage[]): CreditedInvoiceDraft {
  if (draft.lines.some((l) => l.tokenType === 'credit')) throw new ValidationError('lines', 'the invoice already has credit lines');
  for (const u of usage) {
    parsePeriod(u.servicePeriod);
    if (u.servicePeriod > draft.period) throw new ValidationError('servicePeriod', `usage from ${u.servicePeriod} cannot be on the ${draft.period} invoice`);
  }
  const { allocations, uncoveredUnits } = allocateCredits(pools, usage);
  const byId = new Map(pools.map((p) => [p.id, p]));
  const rank = new Map([...pools].sort(burnOrder).map((p, i) => [p.id, i]));
  const ordered = [...allocations].sort(
    (a, b) => rank.get(a.grantId)! - rank.get(b.grantId)! || (a.servicePeriod < b.servicePeriod ? -1 : a.servicePeriod > b.servicePeriod ? 1 : 0),
  );

  const pieces = ordered.map((a) => {
    const exact = usd(costUnitsToString(-a.units));
    return { grantId: a.grantId, servicePeriod: a.servicePeriod, exact, cents: toMinorUnits(exact), reduced: false };
  });

  // Cap 1: per grant, the cents never exceed the pool (in whole cents).
  for (const grantId of new Set(pieces.map((p) => p.grantId))) {
    const capCents = byId.get(grantId)!.availableUnits / UNITS_PER_CENT;
    const mine = pieces.filter((p) => p.grantId === grantId);
    let over = -mine.reduce((s, p) => s + p.cents, 0n) - capCents;
    for (let i = mine.length - 1; i >= 0 && over > 0n; i--) over = reduce(mine[i], over);
  }

  // Cap 2: the total floor.
  const otherCents = draft.lines.reduce((s, l) => s + l.amountMinor, 0n);
  let below = -(otherCents + pieces.reduce((s, p) => s + p.cents, 0n));
  for (let i = pieces.length - 1; i >= 0 && below > 0n; i--) below = reduce(pieces[i], below);

  const creditLines: InvoiceCreditLineDraft[] = [];
  for (const p of pieces) {
    if (p.cents === 0n) continue;
    const grant = byId.get(p.grantId)!;
    creditLines.push({
      lineKey: creditLineKey(p.servicePeriod, p.grantId),
      model: '',
      tokenType: 'credit',
      servicePeriod: p.servicePeriod,
      quantity: 0n,
      unitPricePerMTok: ZERO,
      amountExactUsd: p.reduced ? new Decimal(p.cents.toString()).dividedBy(100) : p.exact,
      amountMinor: p.cents,
      description: creditDescription(draft.period, p.servicePeriod, p.grantId, grant.category),
      grantId: p.grantId,
      category: grant.category,
    });
  }

  const lines = [...draft.lines, ...creditLines];
  let totalExactUsd: Decimal = ZERO;
  let totalMinor = 0n;
  for (const line of lines) {
    totalExactUsd = totalExactUsd.plus(line.amountExactUsd);
    totalMinor += line.amountMinor;
  }
  return {
    period: draft.period,
    lines,
    totalExactUsd,
    totalMinor,
    creditLines,
    consumption: creditLines.map((l) => ({ grantId: l.grantId, servicePeriod: l.servicePeriod, amountMinor: -l.amountMinor })),
    uncoveredUnits,
  };
}

/** Takes up to `by` cents off a (negative) credit piece; returns what is still to take. */
function reduce(p: { cents: bigint; reduced: boolean }, by: bigint): bigint {
  const take = -p.cents < by ? -p.cents : by;
  if (take === 0n) return by;
  p.cents += take;
  p.reduced = true;
  return by - take;
}

const CATEGORY_LABEL: Record<CreditCategory, string> = { paid: 'Prepaid credit', promotional: 'Promotional credit' };

/** `Promotional credit grt_123, Nov 2026` / `Prepaid credit grt_9 (usage from Oct 2026)` */
function creditDescription(period: string, servicePeriod: string, grantId: string, category: CreditCategory): string {
  const when = servicePeriod === period ? `, ${periodLabel(period)}` : ` (usage from ${periodLabel(servicePeriod)})`;
  return `${CATEGORY_LABEL[category]} ${grantId}${when}`;
}
