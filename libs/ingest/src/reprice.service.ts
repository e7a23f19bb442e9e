import { ConflictError, costUnitsToString, priceEventUnits, type CostUnits, type EventPricingUnits } from '@tokenmeter/billing';
import type {
  EventPrice,
  EventUsageRecord,
  Queryable,
  RepriceFilter,
  RepriceRepository,
  RepriceResult,
  StoredEventPriceRecord,
  Transactor,
} from '@tokenmeter/db';
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
 * Prices exactly as ingest does (priceEventUnits), so an event whose price has not changed
 * compares equal to what is stored, digit for digit, and is left alone.
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
    options: { dryRun: boolean; beforeCommit?: (q: Queryable, result: RangeRepriceResult) => Promise<void> },
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
              const storedTotal = e.costs?.total ?? 0n;
              group.before += storedTotal;
              // No price now but one before cannot happen (versions are never deleted): it keeps its cost.
              group.after += priced ? priced.costs.total : storedTotal;
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

  private async refuseInvoiced(filter: RepriceFilter, q: Queryable): Promise<void> {
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
  /** Exact sums, in cost units. */
  before: CostUnits;
  after: CostUnits;
}

function groupOf(groups: Map<string, GroupSums>, accountId: string, model: string): GroupSums {
  const key = `${accountId}\u0000${model}`;
  let group = groups.get(key);
  if (!group) {
    group = { accountId, model, events: 0, changed: 0, before: 0n, after: 0n };
    groups.set(key, group);
  }
  return group;
}

function summarise(groups: Map<string, GroupSums>): RangeRepriceResult {
  const list = [...groups.values()].sort((a, b) => (a.accountId === b.accountId ? cmp(a.model, b.model) : cmp(a.accountId, b.accountId)));
  let before = 0n;
  let after = 0n;
  let events = 0;
  let changed = 0;
  for (const g of list) {
    before += g.before;
    after += g.after;
    events += g.events;
    changed += g.changed;
  }
  return {
    groups: list.map((g) => ({
      accountId: g.accountId,
      model: g.model,
      events: g.events,
      eventsChanged: g.changed,
      costBeforeUsd: costUnitsToString(g.before),
      costAfterUsd: costUnitsToString(g.after),
    })),
    totals: { events, eventsChanged: changed, costBeforeUsd: costUnitsToString(before), costAfterUsd: costUnitsToString(after) },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function priceStored(pricing: PricingContext, e: EventUsageRecord): EventPricingUnits | undefined {
  return priceEventUnits(pricing.book, pricing.overrides, e);
}

/** Exact: the same version, the same override, and every stored cost equal to the new one. */
function isChange(e: StoredEventPriceRecord, priced: EventPricingUnits): boolean {
  const stored = e.costs;
  const now = priced.costs;
  return (
    e.priceVersionId !== priced.priceVersion.id ||
    e.priceOverrideId !== (priced.override?.id ?? null) ||
    stored === null ||
    stored.input !== now.input ||
    stored.output !== now.output ||
    stored.cacheRead !== now.cacheRead ||
    stored.cacheWrite !== now.cacheWrite ||
    stored.total !== now.total
  );
}

function toEventPrice(eventId: string, priced: EventPricingUnits): EventPrice {
  return {
    eventId,
    priceVersionId: priced.priceVersion.id,
    priceOverrideId: priced.override?.id ?? null,
    costs: priced.costs,
  };
}
