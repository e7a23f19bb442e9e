import type { CostUnits } from '@tokenmeter/billing';
import type { NewUsageEventRow } from './usage-event-rows';

/**
 * usage_hourly, defined once. Its rows are keyed by (account, api key, model, UTC hour) and every
 * other column is a measure over that hour's usage_events rows. Whatever writes or reads rollups
 * takes its column list from here: the COPY codec and its staging table, the upsert, the SQL
 * aggregation of the set-based write path, reprice's cost deltas, the read side; and
 * hourlyRollups below, which does in JS what `ofEvents` does in SQL. The order is the table's.
 * usage_daily and usage_monthly (below) have the same measures per UTC day and month, derived from these hour rows.
 */
export const ROLLUP_KEY_COLUMNS = ['account_id', 'api_key_id', 'model', 'hour'] as const;

/**
 * `kind` says how a measure is written and read: 'count' is a bigint (requests, tokens), 'usd'
 * an exact numeric cost that sums the usage_events column of the same name (NULL while unpriced,
 * hence the coalesce). `ofEvents` is the measure as an aggregate over usage_events rows.
 */
export const ROLLUP_MEASURES = [
  { column: 'requests', kind: 'count', ofEvents: 'count(*)' },
  { column: 'unpriced_requests', kind: 'count', ofEvents: 'count(*) FILTER (WHERE price_version_id IS NULL)' },
  { column: 'input_tokens', kind: 'count', ofEvents: 'sum(input_tokens)' },
  { column: 'output_tokens', kind: 'count', ofEvents: 'sum(output_tokens)' },
  { column: 'cache_read_tokens', kind: 'count', ofEvents: 'sum(cache_read_tokens)' },
  { column: 'cache_write_tokens', kind: 'count', ofEvents: 'sum(cache_write_tokens)' },
  { column: 'reasoning_tokens', kind: 'count', ofEvents: 'sum(reasoning_tokens)' },
  { column: 'input_cost_usd', kind: 'usd', ofEvents: 'coalesce(sum(input_cost_usd), 0)' },
  { column: 'output_cost_usd', kind: 'usd', ofEvents: 'coalesce(sum(output_cost_usd), 0)' },
  { column: 'cache_read_cost_usd', kind: 'usd', ofEvents: 'coalesce(sum(cache_read_cost_usd), 0)' },
  { column: 'cache_write_cost_usd', kind: 'usd', ofEvents: 'coalesce(sum(cache_write_cost_usd), 0)' },
  { column: 'cost_usd', kind: 'usd', ofEvents: 'coalesce(sum(cost_usd), 0)' },
] as const satisfies readonly { column: string; kind: 'count' | 'usd'; ofEvents: string }[];

type Measure = (typeof ROLLUP_MEASURES)[number];
export type RollupKeyColumn = (typeof ROLLUP_KEY_COLUMNS)[number];
export type RollupCountColumn = Extract<Measure, { kind: 'count' }>['column'];
export type RollupCostColumn = Extract<Measure, { kind: 'usd' }>['column'];
export type RollupColumn = RollupKeyColumn | Measure['column'];

/** Every usage_hourly column, in table order. */
export const ROLLUP_COLUMNS: readonly RollupColumn[] = [...ROLLUP_KEY_COLUMNS, ...ROLLUP_MEASURES.map((m) => m.column)];
export const ROLLUP_COUNT_COLUMNS = ROLLUP_MEASURES.filter((m) => m.kind === 'count').map((m) => m.column) as readonly RollupCountColumn[];
export const ROLLUP_COST_COLUMNS = ROLLUP_MEASURES.filter((m) => m.kind === 'usd').map((m) => m.column) as readonly RollupCostColumn[];

/**
 * One usage_hourly row (or the delta a chunk adds to it), keyed by column name: counts as JS
 * numbers, costs as exact bigint cost units (10^-22 USD), `hour` as the ISO 8601 start of the
 * UTC hour.
 */
export type HourlyRollupRow = { [K in RollupKeyColumn]: string } & { [K in RollupCountColumn]: number } & { [K in RollupCostColumn]: CostUnits };

/**
 * `SELECT <key>, <every measure> FROM <source> GROUP BY <key>`: the rollup of a set of
 * usage_events rows (`source` is a table or CTE with usage_events' columns). Hours are truncated in
 * UTC explicitly: date_trunc on timestamptz otherwise uses the session time zone.
 */
export function rollupOfEventsSql(source: string, orderBy = 'ORDER BY 1, 2, 3, 4'): string {
  return `SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC'),
    ${ROLLUP_MEASURES.map((m) => m.ofEvents).join(', ')}
  FROM ${source}
  GROUP BY 1, 2, 3, 4
  ${orderBy}`;
}

/** Rollups only ever grow by the rows just inserted: `ON CONFLICT` adding every measure to the target (`alias`). */
const addOnConflictSql = (keyColumns: readonly string[], alias: string) => `ON CONFLICT (${keyColumns.join(', ')}) DO UPDATE SET
    ${ROLLUP_MEASURES.map((m) => `${m.column} = ${alias}.${m.column} + EXCLUDED.${m.column}`).join(',\n    ')}`;

/** For `INSERT INTO usage_hourly AS h`. */
export const ROLLUP_ADD_ON_CONFLICT_SQL = addOnConflictSql(ROLLUP_KEY_COLUMNS, 'h');

/**
 * The coarser rollups: the same measures per UTC day (usage_daily) and per UTC calendar month
 * (usage_monthly), so that a month of dashboard costs ~31 day rows per (key, model) instead of 744
 * hour rows, and a year ~12 month rows instead of ~365 day rows. Every measure is a sum (or a
 * count) over events, so a day's or a month's value is the sum of its hours' values: these rows are
 * derived from hour rows (a chunk's, or all of the finer table in a backfill), never from events a
 * second time, and written in the same transaction as those hour rows. Reads tile a range from
 * whole months, whole days and the edge hours (usage-read.repository.ts).
 *
 * `startSql` is the UTC start of a timestamptz's day or month. A day is date_bin from a UTC
 * midnight origin, plain arithmetic; a month has no fixed length, so date_trunc told 'UTC'
 * (without it, date_trunc follows the session time zone).
 */
export const COARSE_GRAINS = {
  day: { table: 'usage_daily', time: 'day', startSql: (timestamp: string) => `date_bin('1 day', ${timestamp}, TIMESTAMPTZ '2000-01-01 00:00:00+00')` },
  month: { table: 'usage_monthly', time: 'month', startSql: (timestamp: string) => `date_trunc('month', ${timestamp}, 'UTC')` },
} as const;
export type CoarseGrain = keyof typeof COARSE_GRAINS;
/** Finest first: the order every writer locks their rows in. */
export const COARSE_GRAIN_ORDER: readonly CoarseGrain[] = ['day', 'month'];

/** The UTC start (midnight) of a timestamptz's day or month. */
export const utcStartSql = (grain: CoarseGrain, timestamp: string) => COARSE_GRAINS[grain].startSql(timestamp);

/** A coarse rollup's key columns: usage_hourly's, with `day` or `month` for `hour`. */
export const grainKeyColumns = (grain: CoarseGrain) => ['account_id', 'api_key_id', 'model', COARSE_GRAINS[grain].time] as const;

/** Every column of a coarse rollup, in table order. */
export const grainColumns = (grain: CoarseGrain): readonly string[] => [...grainKeyColumns(grain), ...ROLLUP_MEASURES.map((m) => m.column)];

/**
 * `SELECT <grain key>, <every measure summed> FROM <source> GROUP BY <grain key>`, `source` having
 * usage_hourly's columns (its `hour`) or a finer coarse rollup's (`time`, e.g. 'day').
 */
export function grainOfRollupSql(grain: CoarseGrain, source: string, orderBy = 'ORDER BY 1, 2, 3, 4', time = 'hour'): string {
  return `SELECT account_id, api_key_id, model, ${utcStartSql(grain, time)},
    ${ROLLUP_MEASURES.map((m) => `sum(${m.column})`).join(', ')}
  FROM ${source}
  GROUP BY 1, 2, 3, 4
  ${orderBy}`;
}

/** `INSERT INTO <grain's table> ... ON CONFLICT add`, of hour rows, in key order (stable lock order, as for the hour rows). */
const addHoursToGrainSql = (grain: CoarseGrain, hours: string) => `INSERT INTO ${COARSE_GRAINS[grain].table} AS r (${grainColumns(grain).join(', ')})
  ${grainOfRollupSql(grain, hours)}
  ${addOnConflictSql(grainKeyColumns(grain), 'r')}`;

/**
 * Adds hour rows (a chunk's rollup rows, e.g. usage_hourly_staging) to usage_daily and
 * usage_monthly, in one statement (one round trip, as the day rows alone took). Postgres runs the
 * main INSERT (days) before the WITH one (months) it does not read, so every writer locks day rows
 * before month rows, after its hour rows, as reprice does.
 */
export function addHoursToCoarseRollupsSql(hours: string): string {
  const [first, ...rest] = COARSE_GRAIN_ORDER;
  return `WITH ${rest.map((g) => `${g}_rows AS (${addHoursToGrainSql(g, hours)})`).join(', ')}
  ${addHoursToGrainSql(first, hours)}`;
}

const HOUR_MS = 3_600_000;

/**
 * What a set of NEW events adds to usage_hourly, per (account, api key, model, UTC hour): the
 * same aggregation as rollupOfEventsSql, done here when every event of a chunk is known to be new.
 * Token sums stay exact as JS numbers (a chunk holds at most a few thousand events of < 10^9
 * tokens each, far below 2^53); costs are summed exactly as bigint cost units (see libs/billing
 * cost-units.ts). The row literal names every column (the type refuses one missing or extra).
 */
export function hourlyRollups(events: readonly NewUsageEventRow[]): HourlyRollupRow[] {
  const groups = new Map<string, HourlyRollupRow>();
  for (const e of events) {
    const hourMs = Math.floor(e.occurredAt.getTime() / HOUR_MS) * HOUR_MS;
    // NUL cannot occur in ids (the contract allows [A-Za-z0-9._:-]), so it separates safely.
    const groupKey = `${e.accountId}\u0000${e.apiKeyId}\u0000${e.model}\u0000${hourMs}`;
    let g = groups.get(groupKey);
    if (g === undefined) {
      g = {
        account_id: e.accountId,
        api_key_id: e.apiKeyId,
        model: e.model,
        hour: new Date(hourMs).toISOString(),
        requests: 0,
        unpriced_requests: 0,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        input_cost_usd: 0n,
        output_cost_usd: 0n,
        cache_read_cost_usd: 0n,
        cache_write_cost_usd: 0n,
        cost_usd: 0n,
      };
      groups.set(groupKey, g);
    }
    g.requests++;
    g.input_tokens += e.inputTokens;
    g.output_tokens += e.outputTokens;
    g.cache_read_tokens += e.cacheReadTokens;
    g.cache_write_tokens += e.cacheWriteTokens;
    g.reasoning_tokens += e.reasoningTokens;
    const c = e.costs;
    if (c === null) {
      g.unpriced_requests++;
      continue;
    }
    g.input_cost_usd += c.input;
    g.output_cost_usd += c.output;
    g.cache_read_cost_usd += c.cacheRead;
    g.cache_write_cost_usd += c.cacheWrite;
    g.cost_usd += c.total;
  }
  return [...groups.values()];
}
