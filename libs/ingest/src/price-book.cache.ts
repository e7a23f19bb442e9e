import { PriceBook, usd, type ModelLimits, type PriceVersion } from '@tokenmeter/billing';
import type { PriceBookRepository, PriceBookSnapshot } from '@tokenmeter/db';

export interface PricingContext {
  book: PriceBook;
  limits: Map<string, ModelLimits>;
  revision: string;
}

/**
 * Keeps the price book in memory and reloads it when its revision changes. The revision is
 * checked once per batch (one tiny query), so a new price applies from the next batch on.
 */
export class PriceBookCache {
  private context: PricingContext | undefined;

  constructor(private readonly repository: PriceBookRepository) {}

  async current(): Promise<PricingContext> {
    const revision = await this.repository.getRevision();
    if (this.context && this.context.revision === revision) return this.context;
    this.context = toPricingContext(await this.repository.loadSnapshot());
    return this.context;
  }
}

export function toPricingContext(snapshot: PriceBookSnapshot): PricingContext {
  const versions: PriceVersion[] = snapshot.versions.map((v) => ({
    id: v.id,
    modelId: v.modelId,
    effectiveFrom: v.effectiveFrom,
    inputPerMTok: usd(v.inputPerMTok),
    outputPerMTok: usd(v.outputPerMTok),
    cacheReadPerMTok: usd(v.cacheReadPerMTok),
    cacheWritePerMTok: v.cacheWritePerMTok === null ? null : usd(v.cacheWritePerMTok),
  }));
  const limits = new Map<string, ModelLimits>();
  for (const m of snapshot.models) {
    limits.set(m.id, { contextWindow: m.contextWindow, maxOutputTokens: m.maxOutputTokens });
  }
  return { book: new PriceBook(versions), limits, revision: snapshot.revision };
}
