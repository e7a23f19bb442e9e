import { ConflictError, Decimal, ZERO, priceEvent, type EventPricing } from '@tokenmeter/billing';
import type {
  EventPrice,
  RepriceFilter,
  RepriceRepository,
  RepriceResult,
  StoredEventPriceRecord,
  Transactor,
  UnpricedEventRecord,
} from '@tokenmeter/db';
import type { PoolClient } from 'pg';
import type { PriceBookCache, PricingContext } from './price-book.cache';

/** Cost before and after a reprice, per (account, model). Exact decimal strings. */
export interface RepriceGroup {
  accountId: string;
  model: string;
  /** Not-invoiced events of the range. */
  events: number;
  /** Events whose price (version, override or cost) changes. */
  eventsChanged: number;
  costBeforeUsd: string;
  costAfterUsd: string;
}

export interface RangeRepriceResult {
  groups: RepriceGroup[];
  totals: Omit<RepriceGroup, 'accountId' | 'model'>;
}

/**
 * Prices usage again with the price book and account overrides as they are now: usage that
 * arrived while no price was in force, and priced usage after an override or a price version was
 * added for its period. Invoiced events are never touched (those are corrected on the next invoice).
 */
export class RepriceService {
  constructor(
    private readonly repository: RepriceRepository,
    private readonly priceBooks: PriceBookCache,
  ) {}

  /** Only unpriced, not-yet-invoiced events; priced events keep the price they got. */
  async repriceUnpriced(filter: RepriceFilter): Promise<RepriceResult> {
    const pricing = await this.priceBooks.current();
    return this.repository.repriceUnpriced(filter, (events) => {
      const prices: EventPrice[] = [];
      for (const e of events) {
        const priced = priceStored(pricing, e);
        if (priced) prices.push(toEventPrice(e.eventId, priced));
      }
      return prices;
    });
  }

  /**
   * Every not-invoiced event of the range, priced or not. Run inside `transactor` (one
   * transaction for the whole range, plus whatever `beforeCommit` writes, e.g. the audit entry);
   * a dry run uses a read-only snapshot and writes nothing. Refuses a range holding invoiced usage.
   */
  async repriceRange(
    transactor: Transactor,
    filter: RepriceFilter,
    options: { dryRun: boolean; beforeCommit?: (q: PoolClient, result: RangeRepriceResult) => Promise<void> },
  ): Promise<RangeRepriceResult> {
    const pricing = await this.priceBooks.current();
    return transactor.run(
      async (q) => {
        await this.refuseInvoiced(filter, q);
        const groups = new Map<string, GroupSums>();
        await this.repository.repriceRange(
          q,
          filter,
          (events) => {
            const changes: EventPrice[] = [];
            for (const e of events) {
              const priced = priceStored(pricing, e);
              const group = groupOf(groups, e.accountId, e.model);
              group.events++;
              group.before = e.costUsd === null ? group.before : group.before.plus(e.costUsd);
              if (priced) group.after = group.after.plus(priced.costs.costUsd);
              else if (e.costUsd !== null) group.after = group.after.plus(e.costUsd); // cannot happen: versions are never deleted
              if (priced && isChange(e, priced)) {
                group.changed++;
                changes.push(toEventPrice(e.eventId, priced));
              }
            }
            return changes;
          },
          { apply: !options.dryRun },
        );
        // Invoicing may have claimed events of the range while we walked it (our row locks only
        // cover rows we reached); the range as a whole must be clean at commit.
        if (!options.dryRun) await this.refuseInvoiced(filter, q);
        const result = summarise(groups);
        if (!options.dryRun && options.beforeCommit) await options.beforeCommit(q, result);
        return result;
      },
      { readOnly: options.dryRun },
    );
  }

  private async refuseInvoiced(filter: RepriceFilter, q: PoolClient): Promise<void> {
    const invoiced = await this.repository.countInvoiced(filter, q);
    if (invoiced > 0) {
      throw new ConflictError(
        `${invoiced} event(s) in this range are already invoiced and cannot be repriced; those are corrected on the next invoice. Narrow the range or the account.`,
      );
    }
  }
}

interface GroupSums {
  accountId: string;
  model: string;
  events: number;
  changed: number;
  before: Decimal;
  after: Decimal;
}

function groupOf(groups: Map<string, GroupSums>, accountId: string, model: string): GroupSums {
  const key = `${accountId}\u0000${model}`;
  let group = groups.get(key);
  if (!group) {
    group = { accountId, model, events: 0, changed: 0, before: ZERO, after: ZERO };
    groups.set(key, group);
  }
  return group;
}

function summarise(groups: Map<string, GroupSums>): RangeRepriceResult {
  const list = [...groups.values()].sort((a, b) => (a.accountId === b.accountId ? cmp(a.model, b.model) : cmp(a.accountId, b.accountId)));
  let before = ZERO;
  let after = ZERO;
  let events = 0;
  let changed = 0;
  for (const g of list) {
    before = before.plus(g.before);
    after = after.plus(g.after);
    events += g.events;
    changed += g.changed;
  }
  return {
    groups: list.map((g) => ({
      accountId: g.accountId,
      model: g.model,
      events: g.events,
      eventsChanged: g.changed,
      costBeforeUsd: g.before.toString(),
      costAfterUsd: g.after.toString(),
    })),
    totals: { events, eventsChanged: changed, costBeforeUsd: before.toString(), costAfterUsd: after.toString() },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function priceStored(pricing: PricingContext, e: UnpricedEventRecord): EventPricing | undefined {
  return priceEvent(pricing.book, pricing.overrides, {
    accountId: e.accountId,
    model: e.model,
    occurredAt: e.occurredAt,
    tokens: { ...e, reasoningTokens: 0 },
  });
}

// usage_events.cost_usd keeps 16 decimal places; a discounted cost can have more, so compare at that scale.
const STORED_SCALE = 16;

/** Compared as decimals: the DB returns cost_usd at its column scale ("0.0017599700000000"). */
function isChange(e: StoredEventPriceRecord, priced: EventPricing): boolean {
  return (
    e.priceVersionId !== priced.priceVersion.id ||
    e.priceOverrideId !== (priced.override?.id ?? null) ||
    e.costUsd === null ||
    !new Decimal(e.costUsd).equals(priced.costs.costUsd.toDecimalPlaces(STORED_SCALE, Decimal.ROUND_HALF_UP))
  );
}

function toEventPrice(eventId: string, priced: EventPricing): EventPrice {
  return {
    eventId,
    priceVersionId: priced.priceVersion.id,
    priceOverrideId: priced.override?.id ?? null,
    inputCostUsd: priced.costs.inputCostUsd.toString(),
    outputCostUsd: priced.costs.outputCostUsd.toString(),
    cacheReadCostUsd: priced.costs.cacheReadCostUsd.toString(),
    cacheWriteCostUsd: priced.costs.cacheWriteCostUsd.toString(),
    costUsd: priced.costs.costUsd.toString(),
  };
}
