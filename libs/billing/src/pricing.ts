import { ConflictError, ValidationError } from './errors';
import { Decimal, usd } from './money';
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
