import { ConflictError, ValidationError } from './errors';
import { Decimal, TOKENS_PER_MTOK, ZERO, usd } from './money';
import type { TokenCounts } from './usage-shapes';

/** USD per million tokens. */
export interface PriceRates {
  inputPerMTok: Decimal;
  outputPerMTok: Decimal;
  cacheReadPerMTok: Decimal;
  /** null: the provider has no separate cache-write price, so cache writes cost the input rate. */
  cacheWritePerMTok: Decimal | null;
}

/** One immutable row of the price book. A correction is a new version, never an edit. */
export interface PriceVersion extends PriceRates {
  /** DB bigint id, as a string. */
  id: string;
  modelId: string;
  /** Inclusive: an event at exactly this instant is priced by this version. */
  effectiveFrom: Date;
}

/** Exact, unrounded costs (tokens x rate / 1e6). Rounding happens once, on the invoice line. */
export interface TokenCosts {
  inputCostUsd: Decimal;
  outputCostUsd: Decimal;
  cacheReadCostUsd: Decimal;
  cacheWriteCostUsd: Decimal;
  costUsd: Decimal;
}

function bucketCostUsd(tokens: number, ratePerMTok: Decimal, field: string): Decimal {
  if (!Number.isSafeInteger(tokens) || tokens < 0) {
    throw new ValidationError(field, `must be a non-negative integer token count (got ${tokens})`);
  }
  if (tokens === 0) return ZERO;
  // Our Decimal on the left: decimal.js computes with the left operand's precision, so a rate
  // that came from another decimal.js copy (Prisma's, precision 20) cannot round the product.
  return new Decimal(tokens).times(ratePerMTok).dividedBy(TOKENS_PER_MTOK);
}

/**
 * Cost of one event's tokens. The four buckets are disjoint (see TokenCounts), so each token is
 * charged exactly once; reasoning tokens are part of output and are not charged again.
 */
export function priceTokens(tokens: TokenCounts, rates: PriceRates): TokenCosts {
  const inputCostUsd = bucketCostUsd(tokens.inputTokens, rates.inputPerMTok, 'inputTokens');
  const outputCostUsd = bucketCostUsd(tokens.outputTokens, rates.outputPerMTok, 'outputTokens');
  const cacheReadCostUsd = bucketCostUsd(tokens.cacheReadTokens, rates.cacheReadPerMTok, 'cacheReadTokens');
  const cacheWriteCostUsd = bucketCostUsd(
    tokens.cacheWriteTokens,
    rates.cacheWritePerMTok ?? rates.inputPerMTok,
    'cacheWriteTokens',
  );
  return {
    inputCostUsd,
    outputCostUsd,
    cacheReadCostUsd,
    cacheWriteCostUsd,
    costUsd: inputCostUsd.plus(outputCostUsd).plus(cacheReadCostUsd).plus(cacheWriteCostUsd),
  };
}

function checkedRate(rate: Decimal, field: string, versionId: string): Decimal {
  const ratePerMTok = usd(rate);
  if (ratePerMTok.isNegative()) {
    throw new ValidationError(field, `price version ${versionId}: rate must not be negative (got ${ratePerMTok})`);
  }
  return ratePerMTok;
}

interface ModelTimeline {
  /** effectiveFrom in epoch ms, ascending; parallel to `versions`. */
  fromMs: number[];
  versions: PriceVersion[];
}

/**
 * In-memory price book: which version prices an event of a model at an instant.
 * Built once from all versions (they are few and immutable); lookups are a binary search.
 */
export class PriceBook {
  private readonly timelines = new Map<string, ModelTimeline>();

  constructor(versions: PriceVersion[]) {
    const byModel = new Map<string, PriceVersion[]>();
    for (const version of versions) {
      // Re-wrap rates in this library's Decimal, so every version behaves the same whatever built it.
      const normalised: PriceVersion = {
        ...version,
        inputPerMTok: checkedRate(version.inputPerMTok, 'inputPerMTok', version.id),
        outputPerMTok: checkedRate(version.outputPerMTok, 'outputPerMTok', version.id),
        cacheReadPerMTok: checkedRate(version.cacheReadPerMTok, 'cacheReadPerMTok', version.id),
        cacheWritePerMTok:
          version.cacheWritePerMTok === null
            ? null
            : checkedRate(version.cacheWritePerMTok, 'cacheWritePerMTok', version.id),
      };
      if (Number.isNaN(version.effectiveFrom.getTime())) {
        throw new ValidationError('effectiveFrom', `price version ${version.id}: invalid date`);
      }
      const list = byModel.get(version.modelId) ?? [];
      list.push(normalised);
      byModel.set(version.modelId, list);
    }
    for (const [modelId, list] of byModel) {
      list.sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime());
      for (let i = 1; i < list.length; i++) {
        if (list[i].effectiveFrom.getTime() === list[i - 1].effectiveFrom.getTime()) {
          // Two prices in force at the same instant would make the bill depend on load order.
          throw new ConflictError(
            `price versions ${list[i - 1].id} and ${list[i].id} of ${modelId} share effectiveFrom ${list[i].effectiveFrom.toISOString()}`,
          );
        }
      }
      this.timelines.set(modelId, { fromMs: list.map((v) => v.effectiveFrom.getTime()), versions: list });
    }
  }

  /**
   * The version with the greatest effectiveFrom <= at. An event exactly at effectiveFrom gets the
   * NEW version (a price change takes effect at its instant, not a millisecond later).
   * undefined if the model is unknown or `at` is before its first version: the event is unpriced.
   */
  versionAt(modelId: string, at: Date): PriceVersion | undefined {
    const timeline = this.timelines.get(modelId);
    if (timeline === undefined) return undefined;
    const atMs = at.getTime();
    const { fromMs } = timeline;
    // Binary search for the last index with fromMs <= atMs.
    let lo = 0;
    let hi = fromMs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (fromMs[mid] <= atMs) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found === -1 ? undefined : timeline.versions[found];
  }

  /** Model ids with at least one price version, sorted. */
  models(): string[] {
    return [...this.timelines.keys()].sort();
  }
}

export interface ModelLimits {
  contextWindow: number | null;
  maxOutputTokens: number | null;
}

export type AuditFlag = 'exceeds_context_window' | 'exceeds_max_output';

/**
 * Flags for usage a model could not have produced, which points at a gateway counting bug or a
 * mislabelled model. The event is still stored and priced: flags are for admins, not for dropping usage.
 * Unknown limits (undefined or null) never flag.
 */
export function auditFlags(tokens: TokenCounts, limits: ModelLimits | undefined): AuditFlag[] {
  const flags: AuditFlag[] = [];
  if (limits === undefined) return flags;
  const promptTokens = tokens.inputTokens + tokens.cacheReadTokens + tokens.cacheWriteTokens;
  if (limits.contextWindow !== null && promptTokens + tokens.outputTokens > limits.contextWindow) {
    flags.push('exceeds_context_window');
  }
  if (limits.maxOutputTokens !== null && tokens.outputTokens > limits.maxOutputTokens) {
    flags.push('exceeds_max_output');
  }
  return flags;
}
