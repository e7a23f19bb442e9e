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

/** USD per single token, derived from a PriceRates object. */
interface PerTokenRates {
  // The rates this was derived from: a lookup whose rates object has since been given another
  // rate must not reuse it (Decimals are immutable, so identity is enough).
  sourceInput: Decimal;
  sourceOutput: Decimal;
  sourceCacheRead: Decimal;
  sourceCacheWrite: Decimal | null;
  inputUsd: Decimal;
  outputUsd: Decimal;
  cacheReadUsd: Decimal;
  cacheWriteUsd: Decimal;
}

// rate / 1e6 is computed once per rates object rather than once per bucket per event: the
// division is the most expensive step of pricing, and the ingestor prices ~50k events a second
// against a handful of price versions. Keyed weakly, so dropped price books are collected.
const PER_TOKEN_RATES = new WeakMap<PriceRates, PerTokenRates>();

function perTokenRates(rates: PriceRates): PerTokenRates {
  const cached = PER_TOKEN_RATES.get(rates);
  if (
    cached !== undefined &&
    cached.sourceInput === rates.inputPerMTok &&
    cached.sourceOutput === rates.outputPerMTok &&
    cached.sourceCacheRead === rates.cacheReadPerMTok &&
    cached.sourceCacheWrite === rates.cacheWritePerMTok
  ) {
    return cached;
  }
  // Our Decimal on the left: decimal.js computes with the left operand's precision, so a rate
  // that came from another decimal.js copy (Prisma's, precision 20) cannot round anything.
  // Dividing by 1e6 is exact at precision 60 (rates have at most 20 significant digits).
  const inputUsd = new Decimal(rates.inputPerMTok).dividedBy(TOKENS_PER_MTOK);
  const fresh: PerTokenRates = {
    sourceInput: rates.inputPerMTok,
    sourceOutput: rates.outputPerMTok,
    sourceCacheRead: rates.cacheReadPerMTok,
    sourceCacheWrite: rates.cacheWritePerMTok,
    inputUsd,
    outputUsd: new Decimal(rates.outputPerMTok).dividedBy(TOKENS_PER_MTOK),
    cacheReadUsd: new Decimal(rates.cacheReadPerMTok).dividedBy(TOKENS_PER_MTOK),
    // No cache-write price: cache writes are charged at the input rate.
    cacheWriteUsd:
      rates.cacheWritePerMTok === null ? inputUsd : new Decimal(rates.cacheWritePerMTok).dividedBy(TOKENS_PER_MTOK),
  };
  PER_TOKEN_RATES.set(rates, fresh);
  return fresh;
}

function bucketCostUsd(tokens: number, ratePerToken: Decimal, field: string): Decimal {
  if (!Number.isSafeInteger(tokens) || tokens < 0) {
    throw new ValidationError(field, `must be a non-negative integer token count (got ${tokens})`);
  }
  // tokens < 1e9 (9 digits) x a per-token rate (<= 26 digits): exact at precision 60.
  return tokens === 0 ? ZERO : ratePerToken.times(tokens);
}

/**
 * Cost of one event's tokens: tokens x rate / 1e6 per bucket, exact. The four buckets are
 * disjoint (see TokenCounts), so each token is charged exactly once; reasoning tokens are part
 * of output and are not charged again.
 */
export function priceTokens(tokens: TokenCounts, rates: PriceRates): TokenCosts {
  const perToken = perTokenRates(rates);
  const inputCostUsd = bucketCostUsd(tokens.inputTokens, perToken.inputUsd, 'inputTokens');
  const outputCostUsd = bucketCostUsd(tokens.outputTokens, perToken.outputUsd, 'outputTokens');
  const cacheReadCostUsd = bucketCostUsd(tokens.cacheReadTokens, perToken.cacheReadUsd, 'cacheReadTokens');
  const cacheWriteCostUsd = bucketCostUsd(tokens.cacheWriteTokens, perToken.cacheWriteUsd, 'cacheWriteTokens');
  return tokenCosts(inputCostUsd, outputCostUsd, cacheReadCostUsd, cacheWriteCostUsd);
}

/** Per-type costs and their exact total (the one place the total is formed). */
export function tokenCosts(inputCostUsd: Decimal, outputCostUsd: Decimal, cacheReadCostUsd: Decimal, cacheWriteCostUsd: Decimal): TokenCosts {
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
