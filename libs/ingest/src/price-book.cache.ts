import { OverrideBook, percentage, PriceBook, usd, type ModelLimits, type PriceOverride, type PriceVersion } from '@tokenmeter/billing';
import type { PriceBookRepository, PriceBookSnapshot, PriceOverrideRecord } from '@tokenmeter/db';

export interface PricingContext {
  book: PriceBook;
  /** Account overrides, part of the same snapshot and revision as the book. */
  overrides: OverrideBook;
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
  return { book: new PriceBook(versions), overrides: new OverrideBook(snapshot.overrides.map(toPriceOverride)), limits, revision: snapshot.revision };
}

export function toPriceOverride(r: PriceOverrideRecord): PriceOverride {
  const base = { id: r.id, accountId: r.accountId, effectiveFrom: r.effectiveFrom, effectiveTo: r.effectiveTo };
  if (r.kind === 'rate_card') {
    if (r.modelId === null || r.inputPerMTok === null || r.outputPerMTok === null || r.cacheReadPerMTok === null) {
      throw new Error(`price override ${r.id}: a rate card needs a model and input, output and cache-read rates`);
    }
    return {
      ...base,
      kind: 'rate_card',
      modelId: r.modelId,
      inputPerMTok: usd(r.inputPerMTok),
      outputPerMTok: usd(r.outputPerMTok),
      cacheReadPerMTok: usd(r.cacheReadPerMTok),
      cacheWritePerMTok: r.cacheWritePerMTok === null ? null : usd(r.cacheWritePerMTok),
    };
  }
  if (r.discountPercent === null) throw new Error(`price override ${r.id}: a discount needs discount_percent`);
  return { ...base, kind: 'discount', modelId: r.modelId, discountPercent: percentage(r.discountPercent) };
}
