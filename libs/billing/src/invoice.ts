import { ValidationError } from './errors';
import { periodLabel, parsePeriod } from './invoice-period';
import { Decimal, percentage, TOKENS_PER_MTOK, ZERO, toMinorUnits, usd } from './money';

export type InvoiceTokenType = 'input' | 'output' | 'cache_read' | 'cache_write';
/** `credit`: a grant applied to the invoice (invoice-credits.ts), always after usage and discount lines. */
export type InvoiceLineType = InvoiceTokenType | 'discount' | 'credit';

const TOKEN_TYPE_ORDER: Record<InvoiceLineType, number> = { input: 0, output: 1, cache_read: 2, cache_write: 3, discount: 4, credit: 5 };
const TOKEN_TYPE_LABEL: Record<InvoiceTokenType, string> = {
  input: 'input tokens',
  output: 'output tokens',
  cache_read: 'cache read tokens',
  cache_write: 'cache write tokens',
};

/**
 * Usage priced the same way, summed over events: one row per (model, token type, service
 * period, rate, override) as the database groups it. Several rows with the same line identity
 * (e.g. two price versions that happen to have the same rate) are merged into one line.
 */
export interface InvoiceUsageRow {
  model: string;
  tokenType: InvoiceTokenType;
  /** 'YYYY-MM' the usage happened in; earlier than the invoice period for late usage. */
  servicePeriod: string;
  /**
   * The rate printed on the line, USD per 1M tokens: the price book's rate, or the account's
   * own rate-card rate when a rate-card override priced the events.
   */
  ratePerMTok: Decimal;
  tokens: bigint;
  /** Sum of the exact per-event costs actually stored for these tokens (never rounded). */
  amountUsd: Decimal;
  /** Set when a percentage-discount override priced these events: shown on the discount line. */
  discountPercent?: Decimal | null;
}

export interface InvoiceLineDraft {
  /** Deterministic within an invoice; Stripe idempotency keys derive from it. */
  lineKey: string;
  model: string;
  tokenType: InvoiceLineType;
  servicePeriod: string;
  /** Tokens; 0 on discount and credit lines. */
  quantity: bigint;
  /** USD per 1M tokens; 0 on discount and credit lines. */
  unitPricePerMTok: Decimal;
  amountExactUsd: Decimal;
  /** amountExactUsd rounded once, half up, to integer cents. */
  amountMinor: bigint;
  description: string;
}

export interface InvoiceDraft {
  period: string;
  lines: InvoiceLineDraft[];
  /** Sum of the exact line amounts = sum of the exact costs of the invoiced events. */
  totalExactUsd: Decimal;
  /** Sum of the ROUNDED lines (what the customer pays); may differ from round(totalExactUsd). */
  totalMinor: bigint;
}

interface Group {
  model: string;
  tokenType: InvoiceTokenType;
  servicePeriod: string;
  ratePerMTok: Decimal;
  tokens: bigint;
}

interface DiscountGroup {
  model: string;
  servicePeriod: string;
  percent: Decimal | null;
  amountUsd: Decimal;
}

/**
 * Turns an account's usage for one invoice into invoice lines.
 *
 * - One line per (service period, model, token type, rate) with non-zero tokens. A price change
 *   inside the month therefore gives two lines for that model and type.
 * - Usage lines are at the rate printed on them: amount = tokens x rate / 1e6, exact.
 * - Whatever the stored event costs differ from that (a percentage discount override) goes on
 *   ONE negative discount line per (service period, model, discount): the invoice's exact total
 *   is always exactly the sum of the stored event costs, so it reconciles against raw events.
 * - Each line is rounded once, half up, to cents (`toMinorUnits`, the one rounding rule); the
 *   invoice total is the sum of the rounded lines, never a rounding of the exact total.
 * - Usage from an earlier month (late usage) keeps its own service period, so it never merges
 *   with this month's line, and its description names the month it was served in.
 */
export function buildInvoiceLines(period: string, rows: readonly InvoiceUsageRow[]): InvoiceDraft {
  parsePeriod(period);
  const groups = new Map<string, Group>();
  const discounts = new Map<string, DiscountGroup>();

  for (const row of rows) {
    parsePeriod(row.servicePeriod);
    if (row.servicePeriod > period) {
      throw new ValidationError('servicePeriod', `usage from ${row.servicePeriod} cannot be billed on the ${period} invoice`);
    }
    if (row.tokens < 0n) throw new ValidationError('tokens', `must not be negative (got ${row.tokens})`);
    const ratePerMTok = usd(row.ratePerMTok);
    const chargedUsd = usd(row.amountUsd);
    const key = usageLineKey(row.servicePeriod, row.model, row.tokenType, ratePerMTok);
    const group = groups.get(key);
    if (group) group.tokens += row.tokens;
    else groups.set(key, { model: row.model, tokenType: row.tokenType, servicePeriod: row.servicePeriod, ratePerMTok, tokens: row.tokens });

    // What the events were charged beyond (below) tokens x printed rate is a discount. Attributed
    // per row, so a discount that changed mid-month gives one discount line per percentage.
    const grossUsd = new Decimal(row.tokens.toString()).times(ratePerMTok).dividedBy(TOKENS_PER_MTOK);
    const differenceUsd = chargedUsd.minus(grossUsd);
    if (!differenceUsd.isZero()) {
      const percent = row.discountPercent ? percentage(row.discountPercent) : null;
      const dKey = discountLineKey(row.servicePeriod, row.model, percent);
      const d = discounts.get(dKey);
      if (d) d.amountUsd = d.amountUsd.plus(differenceUsd);
      else discounts.set(dKey, { model: row.model, servicePeriod: row.servicePeriod, percent, amountUsd: differenceUsd });
    }
  }

  const lines: InvoiceLineDraft[] = [];
  for (const [lineKey, g] of groups) {
    const grossUsd = new Decimal(g.tokens.toString()).times(g.ratePerMTok).dividedBy(TOKENS_PER_MTOK);
    if (g.tokens === 0n) continue;
    lines.push({
      lineKey,
      model: g.model,
      tokenType: g.tokenType,
      servicePeriod: g.servicePeriod,
      quantity: g.tokens,
      unitPricePerMTok: g.ratePerMTok,
      amountExactUsd: grossUsd,
      amountMinor: toMinorUnits(grossUsd),
      description: usageDescription(period, g),
    });
  }
  for (const [lineKey, d] of discounts) {
    if (d.amountUsd.isZero()) continue;
    lines.push({
      lineKey,
      model: d.model,
      tokenType: 'discount',
      servicePeriod: d.servicePeriod,
      quantity: 0n,
      unitPricePerMTok: ZERO,
      amountExactUsd: d.amountUsd,
      amountMinor: toMinorUnits(d.amountUsd),
      description: discountDescription(period, d),
    });
  }

  lines.sort((a, b) => compareLines(period, a, b));
  let totalExactUsd: Decimal = ZERO;
  let totalMinor = 0n;
  for (const line of lines) {
    totalExactUsd = totalExactUsd.plus(line.amountExactUsd);
    totalMinor += line.amountMinor;
  }
  return { period, lines, totalExactUsd, totalMinor };
}

// Keys use the rate's canonical decimal form ("2.2857", never "2.2857000000"), so the same rate
// read back from a DECIMAL(20,10) column gives the same key on every run.
function usageLineKey(servicePeriod: string, model: string, tokenType: InvoiceTokenType, ratePerMTok: Decimal): string {
  return `${servicePeriod}:${model}:${tokenType}:${ratePerMTok.toFixed()}`;
}

function discountLineKey(servicePeriod: string, model: string, percent: Decimal | null): string {
  return `${servicePeriod}:${model}:discount:${percent === null ? 'adjustment' : percent.toFixed()}`;
}

// This month's usage first, then late usage oldest first; within that by model, token type, rate.
function compareLines(period: string, a: InvoiceLineDraft, b: InvoiceLineDraft): number {
  const aLate = a.servicePeriod === period ? 0 : 1;
  const bLate = b.servicePeriod === period ? 0 : 1;
  if (aLate !== bLate) return aLate - bLate;
  if (a.servicePeriod !== b.servicePeriod) return a.servicePeriod < b.servicePeriod ? -1 : 1;
  if (a.model !== b.model) return a.model < b.model ? -1 : 1;
  if (a.tokenType !== b.tokenType) return TOKEN_TYPE_ORDER[a.tokenType] - TOKEN_TYPE_ORDER[b.tokenType];
  return a.unitPricePerMTok.comparedTo(b.unitPricePerMTok);
}

function servicePeriodSuffix(period: string, servicePeriod: string): string {
  return servicePeriod === period ? `, ${periodLabel(period)}` : ` (usage from ${periodLabel(servicePeriod)})`;
}

/** `deepseek-r1 output tokens, 12,345,678 x $2.2857 per 1M, Nov 2026` */
function usageDescription(period: string, g: Group): string {
  return (
    `${g.model} ${TOKEN_TYPE_LABEL[g.tokenType]}, ${formatTokens(g.tokens)} x $${formatRate(g.ratePerMTok)} per 1M` +
    servicePeriodSuffix(period, g.servicePeriod)
  );
}

function discountDescription(period: string, d: DiscountGroup): string {
  const what = d.percent === null ? 'price adjustment' : `discount ${d.percent.toFixed()}%`;
  return `${d.model} ${what}${servicePeriodSuffix(period, d.servicePeriod)}`;
}

export function formatTokens(tokens: bigint): string {
  return tokens.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** At least two decimals ($10.00, $0.15), otherwise every significant digit ($2.2857). */
export function formatRate(ratePerMTok: Decimal): string {
  return ratePerMTok.decimalPlaces() < 2 ? ratePerMTok.toFixed(2) : ratePerMTok.toFixed();
}
