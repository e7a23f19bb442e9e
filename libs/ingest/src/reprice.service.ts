import { priceTokens } from '@tokenmeter/billing';
import type { EventPrice, RepriceFilter, RepriceRepository, RepriceResult } from '@tokenmeter/db';
import type { PriceBookCache } from './price-book.cache';

/**
 * Prices usage that arrived while no price was in force for its model at its occurred_at.
 * Only unpriced, not-yet-invoiced events are touched; priced events keep the version they got.
 */
export class RepriceService {
  constructor(
    private readonly repository: RepriceRepository,
    private readonly priceBooks: PriceBookCache,
  ) {}

  async repriceUnpriced(filter: RepriceFilter): Promise<RepriceResult> {
    const { book } = await this.priceBooks.current();
    return this.repository.repriceUnpriced(filter, (events) => {
      const prices: EventPrice[] = [];
      for (const e of events) {
        const version = book.versionAt(e.model, e.occurredAt);
        if (!version) continue;
        const costs = priceTokens({ ...e, reasoningTokens: 0 }, version);
        prices.push({
          eventId: e.eventId,
          priceVersionId: version.id,
          inputCostUsd: costs.inputCostUsd.toString(),
          outputCostUsd: costs.outputCostUsd.toString(),
          cacheReadCostUsd: costs.cacheReadCostUsd.toString(),
          cacheWriteCostUsd: costs.cacheWriteCostUsd.toString(),
          costUsd: costs.costUsd.toString(),
        });
      }
      return prices;
    });
  }
}
