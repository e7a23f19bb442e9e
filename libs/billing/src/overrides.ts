import { ValidationError } from './errors';
import { Decimal, percentage, usd } from './money';
import type { PriceBook, PriceRates, PriceVersion } from './pricing';

/**
 * Per-account pricing agreed outside the public price list.
 *
 * - `rate_card`: the account pays these rates for one model instead of the list rates.
 * - `discount`: the account pays the list (or nothing else) minus a percentage, for one model
 *   or (modelId null) for every model.
 *
 * In force from effectiveFrom (inclusive) to effectiveTo (exclusive; null = open-ended), like
 * price versions, so an event exactly at a boundary gets the new terms.
 */
export type PriceOverride = RateCardOverride | DiscountOverride;

interface OverrideBase {
  /** DB bigint id, as a string. */
  id: string;
  accountId: string;
  effectiveFrom: Date;
  effectiveTo: Date | null;
}

export interface RateCardOverride extends OverrideBase, PriceRates {
  kind: 'rate_card';
  modelId: string;
}

export interface DiscountOverride extends OverrideBase {
  kind: 'discount';
  /** null: every model. */
  modelId: string | null;
  /** In (0, 100]. */
  discountPercent: Decimal;
}

const ALL_MODELS = '*';

/**
 * All overrides of all accounts, indexed for the ingest hot path: an account without overrides
 * costs one Map miss per event; otherwise a scan of that account's few overrides for the model.
 */
export class OverrideBook {
  /** accountId -> modelId (or '*') -> overrides, latest effectiveFrom first. */
  private readonly byAccount = new Map<string, Map<string, PriceOverride[]>>();

  constructor(overrides: PriceOverride[]) {
    for (const raw of overrides) {
      const o = normaliseOverride(raw);
      let byModel = this.byAccount.get(o.accountId);
      if (!byModel) {
        byModel = new Map();
        this.byAccount.set(o.accountId, byModel);
      }
      const key = o.modelId ?? ALL_MODELS;
      const list = byModel.get(key) ?? [];
      list.push(o);
      byModel.set(key, list);
    }
    for (const byModel of this.byAccount.values()) {
      for (const list of byModel.values()) list.sort(latestFirst);
    }
  }

  get size(): number {
    let n = 0;
    for (const byModel of this.byAccount.values()) for (const list of byModel.values()) n += list.length;
    return n;
  }

  /**
   * The override that prices an event of (account, model) at `at`:
   * 1. a rate card for that model in force at `at` (it replaces the list rates), else
   * 2. a discount for that model in force, else
   * 3. a discount for all models in force.
   * Among several of the same kind and scope in force at once, the latest effectiveFrom wins
   * (ties: the higher id, i.e. the one created last), so a newer agreement supersedes an older
   * one without anyone having to close the old one first. Overrides never stack.
   */
  overrideAt(accountId: string, modelId: string, at: Date): PriceOverride | undefined {
    const byModel = this.byAccount.get(accountId);
    if (byModel === undefined) return undefined;
    const atMs = at.getTime();
    const forModel = byModel.get(modelId);
    if (forModel !== undefined) {
      const rateCard = firstInForce(forModel, atMs, 'rate_card');
      if (rateCard) return rateCard;
      const discount = firstInForce(forModel, atMs, 'discount');
      if (discount) return discount;
    }
    const forAll = byModel.get(ALL_MODELS);
    return forAll === undefined ? undefined : firstInForce(forAll, atMs, 'discount');
  }
}

function firstInForce(list: PriceOverride[], atMs: number, kind: PriceOverride['kind']): PriceOverride | undefined {
  for (const o of list) {
    if (o.kind !== kind) continue;
    if (o.effectiveFrom.getTime() > atMs) continue;
    if (o.effectiveTo !== null && o.effectiveTo.getTime() <= atMs) continue;
    return o;
  }
  return undefined;
}

function latestFirst(a: PriceOverride, b: PriceOverride): number {
  const byFrom = b.effectiveFrom.getTime() - a.effectiveFrom.getTime();
  if (byFrom !== 0) return byFrom;
  // ids are bigint strings: compare as numbers of digits first, then lexically.
  return b.id.length - a.id.length || (b.id > a.id ? 1 : b.id < a.id ? -1 : 0);
}

function nonNegativeRate(rate: Decimal, field: string, id: string): Decimal {
  const value = usd(rate);
  if (value.isNegative()) throw new ValidationError(field, `override ${id}: rate must not be negative (got ${value})`);
  return value;
}

/** Checks an override's invariants and re-wraps its decimals in this library's Decimal. */
export function normaliseOverride(o: PriceOverride): PriceOverride {
  if (Number.isNaN(o.effectiveFrom.getTime())) throw new ValidationError('effectiveFrom', `override ${o.id}: invalid date`);
  if (o.effectiveTo !== null && !(o.effectiveTo.getTime() > o.effectiveFrom.getTime())) {
    throw new ValidationError('effectiveTo', `override ${o.id}: must be after effectiveFrom`);
  }
  if (o.kind === 'rate_card') {
    return {
      ...o,
      inputPerMTok: nonNegativeRate(o.inputPerMTok, 'inputPerMTok', o.id),
      outputPerMTok: nonNegativeRate(o.outputPerMTok, 'outputPerMTok', o.id),
      cacheReadPerMTok: nonNegativeRate(o.cacheReadPerMTok, 'cacheReadPerMTok', o.id),
      cacheWritePerMTok: o.cacheWritePerMTok === null ? null : nonNegativeRate(o.cacheWritePerMTok, 'cacheWritePerMTok', o.id),
    };
  }
  const percent = percentage(o.discountPercent);
  if (!percent.greaterThan(0) || percent.greaterThan(100)) {
    throw new ValidationError('discountPercent', `override ${o.id}: must be in (0, 100] (got ${percent})`);
  }
  return { ...o, discountPercent: percent };
}

/** What prices one event: the list version in force, and the rates and discount that apply. */
export interface EventRates {
  /** Always the LIST price version in force, even when an override changed the rates. */
  priceVersion: PriceVersion;
  override: PriceOverride | undefined;
  /** The list version's rates, or the account's rate card for the model. */
  rates: PriceRates;
  /** A percentage discount on `rates`, if the account has one in force. */
  discount: DiscountOverride | null;
}

/**
 * Which rates price one event of an account: the list version in force at `occurredAt`, then
 * the account's override. undefined when no list version is in force: the event is unpriced,
 * even if the account has a rate card for the model, because every priced event records the
 * list version in force (receipts show list vs. agreed price, and rollups count "unpriced" by it).
 * The one place this choice is made; priceEventUnits (cost-units.ts) prices with it.
 */
export function ratesFor(
  book: PriceBook,
  overrides: OverrideBook,
  event: { accountId: string; model: string; occurredAt: Date },
): EventRates | undefined {
  const priceVersion = book.versionAt(event.model, event.occurredAt);
  if (priceVersion === undefined) return undefined;
  const override = overrides.overrideAt(event.accountId, event.model, event.occurredAt);
  if (override === undefined) return { priceVersion, override, rates: priceVersion, discount: null };
  if (override.kind === 'rate_card') return { priceVersion, override, rates: override, discount: null };
  return { priceVersion, override, rates: priceVersion, discount: override };
}
