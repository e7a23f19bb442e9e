import type { Pool } from 'pg';
import { costUnitsToString, parseCostUnits, type TokenCostUnits, type TokenCounts } from '@tokenmeter/billing';
import { addToBudgetWindows, lockBudgetsShared } from './budget-spend.repository';
import { notifyCreditUsage } from './credit-grants.repository';
import { COARSE_GRAIN_ORDER, COARSE_GRAINS, ROLLUP_COST_COLUMNS, utcStartSql, type CoarseGrain, type RollupCostColumn } from './hourly-rollups';
import { Transactor, type Queryable } from './transactor';

export interface RepriceFilter {
  from: Date;
  to: Date;
  accountId?: string;
}

/** What prices a stored event: who, which model, when, and its tokens. */
export interface EventUsageRecord {
  eventId: string;
  accountId: string;
  apiKeyId: string;
  model: string;
  occurredAt: Date;
  tokens: TokenCounts;
}

/** A stored event with the price it has now (all null while unpriced). */
export interface StoredEventPriceRecord extends EventUsageRecord {
  priceVersionId: string | null;
  priceOverrideId: string | null;
  /** The stored costs, exactly, in 10^-22 USD (as ingest wrote them); null while unpriced. */
  costs: TokenCostUnits | null;
}

/** A new price for a stored event, in the representation ingest writes (libs/billing cost-units). */
export interface EventPrice {
  eventId: string;
  priceVersionId: string;
  /** The account override applied, if any. */
  priceOverrideId: string | null;
  costs: TokenCostUnits;
}

export interface RepriceResult {
  examined: number;
  priced: number;
}

const CHUNK = 5000;

export class RepriceRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Prices the unpriced, not yet invoiced events of a time range, in one transaction, and moves
   * their costs into the hourly, daily and monthly rollups, so rollups keep equalling the raw events.
   * `price` is the pure pricing step; it returns undefined for events still without a price.
   */
  async repriceUnpriced(
    filter: RepriceFilter,
    price: (events: EventUsageRecord[]) => EventPrice[],
  ): Promise<RepriceResult> {
    let examined = 0;
    let priced = 0;
    return new Transactor(this.pool).run(async (client) => {
      let after: EventUsageRecord | undefined;
      for (;;) {
        const chunk = await this.lockUnpricedChunk(client, filter, after, CHUNK);
        if (chunk.length === 0) break;
        examined += chunk.length;
        after = chunk[chunk.length - 1];
        const prices = price(chunk);
        if (prices.length > 0) priced += await this.applyNewPrices(client, prices);
        if (chunk.length < CHUNK) break;
      }
      return { examined, priced };
    });
  }

  /** Events of the range already on an invoice: a range containing any cannot be repriced. */
  async countInvoiced(filter: RepriceFilter, q: Queryable = this.pool): Promise<number> {
    const { rows } = await q.query<{ n: string }>(
      `SELECT count(*) AS n FROM usage_events
       WHERE invoice_id IS NOT NULL AND occurred_at >= $1 AND occurred_at < $2 AND ($3::text IS NULL OR account_id = $3)`,
      [filter.from.toISOString(), filter.to.toISOString(), filter.accountId ?? null],
    );
    return Number(rows[0].n);
  }

  /**
   * Walks every not-invoiced event of a range (priced or not) in key order, CHUNK at a time,
   * and hands each chunk to `visit`, which returns the new prices of the events whose price
   * changes. With `apply`, the chunk's rows are locked (FOR UPDATE) and the new prices written with
   * their rollup deltas; run it inside a Transactor so the whole range commits at once. Without
   * `apply` nothing is locked or written (a dry run).
   */
  async repriceRange(
    q: Queryable,
    filter: RepriceFilter,
    visit: (events: StoredEventPriceRecord[]) => EventPrice[],
    options: { apply: boolean },
  ): Promise<{ examined: number; changed: number }> {
    let examined = 0;
    let changed = 0;
    let after: EventUsageRecord | undefined;
    for (;;) {
      const { rows } = await q.query(
        `SELECT ${USAGE_SELECT}, price_version_id::text, price_override_id::text,
                ${ROLLUP_COST_COLUMNS.map((c) => `${c}::text`).join(', ')}
         FROM usage_events
         WHERE invoice_id IS NULL
           AND occurred_at >= $1 AND occurred_at < $2
           AND ($3::text IS NULL OR account_id = $3)
           AND ${KEYSET_AFTER}
         ORDER BY ${KEY_ORDER}
         LIMIT $7${options.apply ? ' FOR UPDATE' : ''}`,
        [filter.from.toISOString(), filter.to.toISOString(), filter.accountId ?? null, ...keysetParams(after), CHUNK],
      );
      if (rows.length === 0) break;
      examined += rows.length;
      const events = rows.map((r) => ({
        ...toUsageRecord(r),
        priceVersionId: r.price_version_id,
        priceOverrideId: r.price_override_id,
        costs: r.price_version_id === null ? null : storedCosts(r),
      }));
      after = events[events.length - 1];
      const prices = visit(events);
      if (options.apply && prices.length > 0) changed += await this.applyNewPrices(q, prices);
      else changed += prices.length;
      if (rows.length < CHUNK) break;
    }
    return { examined, changed };
  }

  /**
   * Writes new prices and their rollup deltas, and moves budget windows by the same deltas (which
   * may cross thresholds downwards: a reprice is what raises "down" alerts). The budgets lock is
   * taken before the first rollup change of the transaction and held to its end.
   */
  private async applyNewPrices(q: Queryable, prices: EventPrice[]): Promise<number> {
    await lockBudgetsShared(q);
    await q.query(BUDGET_COST_DELTA_DDL);
    const { rows } = await q.query<{ changed: string }>(APPLY_NEW_PRICES_SQL, priceParams(prices));
    await addToBudgetWindows(q, 'budget_cost_delta');
    // Repriced usage changes what it draws on credits: the same wake-up as ingest (docs/credits.md).
    await notifyCreditUsage(q, 'budget_cost_delta');
    await q.query('DELETE FROM budget_cost_delta');
    return Number(rows[0].changed);
  }

  private async lockUnpricedChunk(
    q: Queryable,
    filter: RepriceFilter,
    after: EventUsageRecord | undefined,
    limit: number,
  ): Promise<EventUsageRecord[]> {
    const { rows } = await q.query(
      `SELECT ${USAGE_SELECT}
       FROM usage_events
       WHERE price_version_id IS NULL AND invoice_id IS NULL
         AND occurred_at >= $1 AND occurred_at < $2
         AND ($3::text IS NULL OR account_id = $3)
         AND ${KEYSET_AFTER}
       ORDER BY ${KEY_ORDER}
       LIMIT $7
       FOR UPDATE`,
      [filter.from.toISOString(), filter.to.toISOString(), filter.accountId ?? null, ...keysetParams(after), limit],
    );
    return rows.map(toUsageRecord);
  }
}

// Chunks walk usage_events' primary key (account_id, occurred_at, event_id): each chunk resumes
// where the last one stopped in every month's index, instead of sorting the range again by
// event_id (which no index of the partitioned table orders by). $4..$6 are the last row's key,
// all NULL for the first chunk.
const KEY_ORDER = 'account_id, occurred_at, event_id';
const KEYSET_AFTER = `($4::text IS NULL OR (account_id, occurred_at, event_id) > ($4::text, $5::timestamptz, $6::text))`;

function keysetParams(after: EventUsageRecord | undefined): [string | null, string | null, string | null] {
  return after === undefined ? [null, null, null] : [after.accountId, after.occurredAt.toISOString(), after.eventId];
}

const USAGE_SELECT = `event_id, account_id, api_key_id, model, occurred_at,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens`;

function toUsageRecord(r: Record<string, any>): EventUsageRecord {
  return {
    eventId: r.event_id,
    accountId: r.account_id,
    apiKeyId: r.api_key_id,
    model: r.model,
    occurredAt: r.occurred_at,
    tokens: {
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      cacheReadTokens: Number(r.cache_read_tokens),
      cacheWriteTokens: Number(r.cache_write_tokens),
      reasoningTokens: Number(r.reasoning_tokens),
    },
  };
}

// Stored costs are exact (unconstrained numeric, written from cost units), so they parse back
// to the very units they were written from; a cost that does not fit is refused, not rounded.
function storedCosts(r: Record<string, any>): TokenCostUnits {
  const costs = { input: 0n, output: 0n, cacheRead: 0n, cacheWrite: 0n, total: 0n };
  for (const c of ROLLUP_COST_COLUMNS) costs[COST_OF[c]] = parseCostUnits(r[c], c);
  return costs;
}

// Which cost of an event each cost column holds (the same pairing as the ingest COPY codec).
const COST_OF: Record<RollupCostColumn, keyof TokenCostUnits> = {
  input_cost_usd: 'input',
  output_cost_usd: 'output',
  cache_read_cost_usd: 'cacheRead',
  cache_write_cost_usd: 'cacheWrite',
  cost_usd: 'total',
};

function priceParams(prices: EventPrice[]): unknown[] {
  return [
    prices.map((p) => p.eventId),
    prices.map((p) => p.priceVersionId),
    prices.map((p) => p.priceOverrideId),
    ...ROLLUP_COST_COLUMNS.map((c) => prices.map((p) => costUnitsToString(p.costs[COST_OF[c]]))),
  ];
}

// The new prices, one array per column; the cost columns are usage_hourly's (ROLLUP_COST_COLUMNS),
// which usage_events names the same, in the order priceParams writes them.
const PRICES_CTE = `
p AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], ${ROLLUP_COST_COLUMNS.map((_, i) => `$${i + 4}::numeric[]`).join(', ')})
    AS t(event_id, price_version_id, price_override_id, ${ROLLUP_COST_COLUMNS.join(', ')})
)`;

const list = (f: (column: string) => string, separator = ', ') => ROLLUP_COST_COLUMNS.map(f).join(separator);

const SAME_EVENT = 'e.account_id = k.account_id AND e.occurred_at = k.occurred_at AND e.event_id = k.event_id';

/** Moves rollup rows (hour, day or month) by deltas with the same key: unpriced_requests down by the newly priced, each cost by its delta. */
const moveRollupSql = (table: string, time: string, delta: string) => `
  UPDATE ${table} r SET
    unpriced_requests = r.unpriced_requests - d.newly_priced,
    ${list((c) => `${c} = r.${c} + d.${c}`, ',\n    ')}
  FROM ${delta} d
  WHERE r.account_id = d.account_id AND r.api_key_id = d.api_key_id AND r.model = d.model AND r.${time} = d.${time}`;

/** `<grain>_delta`, the hour deltas summed per day or month, and `<grain>_roll`, which moves that grain's rows by them. */
const coarseDeltaSql = (grain: CoarseGrain) => {
  const { table, time } = COARSE_GRAINS[grain];
  return `${grain}_delta AS (
  SELECT account_id, api_key_id, model, ${utcStartSql(grain, 'hour')} AS ${time}, sum(newly_priced) AS newly_priced,
    ${list((c) => `sum(${c}) AS ${c}`)}
  FROM delta
  GROUP BY 1, 2, 3, 4
), ${grain}_roll AS (${moveRollupSql(table, time, `${grain}_delta`)}`;
};

// One statement prices both unpriced events and already-priced ones: the rollups move by
// (new - old) per cost column (old is 0 for an unpriced event; its rollup rows exist since it was
// counted on arrival), and unpriced_requests drops by the events that had no price before. The
// day and month rows move by the sum of their hours' deltas, in the same statement as the hour
// rows (the unread WITH updates run in their order: hours, days, months, as ingest locks them). The
// rollups add costs as STORED (RETURNING e.*), so rollups equal raw events whatever the scale.
// `old` reads the rows before the UPDATE (every sub-statement of one WITH sees the same
// snapshot). The caller holds the rows FOR UPDATE. `k` finds each event's usage_events key
// (account_id, occurred_at) in usage_event_ids, so each row is one key lookup in its month.
const APPLY_NEW_PRICES_SQL = `
WITH ${PRICES_CTE}, k AS (
  SELECT p.*, i.account_id, i.occurred_at FROM p JOIN usage_event_ids i ON i.event_id = p.event_id
), old AS (
  SELECT e.event_id, e.price_version_id, ${list((c) => `e.${c}`)}
  FROM usage_events e JOIN k ON ${SAME_EVENT}
), upd AS (
  UPDATE usage_events e SET
    price_version_id = k.price_version_id, price_override_id = k.price_override_id,
    ${list((c) => `${c} = k.${c}`)}, priced_at = now()
  FROM k
  WHERE ${SAME_EVENT} AND e.invoice_id IS NULL
  RETURNING e.event_id, e.account_id, e.api_key_id, e.model, e.occurred_at, ${list((c) => `e.${c}`)}
), delta AS (
  SELECT u.account_id, u.api_key_id, u.model, date_trunc('hour', u.occurred_at, 'UTC') AS hour,
    count(*) FILTER (WHERE o.price_version_id IS NULL) AS newly_priced,
    ${list((c) => `sum(u.${c} - coalesce(o.${c}, 0)) AS ${c}`, ',\n    ')},
    count(*) AS n
  FROM upd u JOIN old o ON o.event_id = u.event_id
  GROUP BY 1, 2, 3, 4
), roll AS (${moveRollupSql('usage_hourly', 'hour', 'delta')}
), ${COARSE_GRAIN_ORDER.map(coarseDeltaSql).join('\n), ')}
), budget_delta AS (
  INSERT INTO budget_cost_delta (account_id, api_key_id, model, hour, cost_usd)
  SELECT account_id, api_key_id, model, hour, cost_usd FROM delta WHERE cost_usd <> 0
)
SELECT coalesce(sum(n), 0) AS changed FROM delta`;

/** Where a chunk's rollup cost deltas wait for addToBudgetWindows (per connection, emptied after each chunk). */
const BUDGET_COST_DELTA_DDL = `CREATE TEMP TABLE IF NOT EXISTS budget_cost_delta
  (account_id text, api_key_id text, model text, hour timestamptz, cost_usd numeric) ON COMMIT DELETE ROWS`;
