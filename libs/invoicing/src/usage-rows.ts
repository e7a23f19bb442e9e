import { usd, type InvoiceTokenType, type InvoiceUsageRow } from '@tokenmeter/billing';
import type { ClaimedUsageRow } from '@tokenmeter/db';

const TYPES: { type: InvoiceTokenType; field: 'input' | 'output' | 'cacheRead' | 'cacheWrite' }[] = [
  { type: 'input', field: 'input' },
  { type: 'output', field: 'output' },
  { type: 'cache_read', field: 'cacheRead' },
  { type: 'cache_write', field: 'cacheWrite' },
];

/**
 * Claimed usage (summed per price version, override and service period) as invoice-line input.
 * The printed rate is the rate-card override's rate when one priced the events, otherwise the
 * price version's; cache writes without their own rate are priced at the input rate, as at
 * ingest. A discount override keeps the list rate; its discount becomes a discount line.
 */
export function toInvoiceUsageRows(rows: ClaimedUsageRow[]): InvoiceUsageRow[] {
  const out: InvoiceUsageRow[] = [];
  for (const r of rows) {
    const list = r.listRates;
    const card = r.cardRates;
    const rates = {
      input: card?.input ?? list.input,
      output: card?.output ?? list.output,
      cacheRead: card?.cacheRead ?? list.cacheRead,
      cacheWrite: card ? (card.cacheWrite ?? card.input ?? list.cacheWrite ?? list.input) : (list.cacheWrite ?? list.input),
    };
    for (const { type, field } of TYPES) {
      const tokens = BigInt(r.tokens[field] ?? '0');
      const cost = r.costUsd[field] ?? '0';
      if (tokens === 0n && usd(cost).isZero()) continue;
      out.push({
        model: r.model,
        tokenType: type,
        servicePeriod: r.servicePeriod,
        ratePerMTok: usd(rates[field]),
        tokens,
        amountUsd: usd(cost),
        discountPercent: r.priceOverrideKind === 'discount' && r.discountPercent !== null ? usd(r.discountPercent) : null,
      });
    }
  }
  return out;
}
