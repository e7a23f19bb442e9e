import type { Pool } from 'pg';
import { Decimal } from '@tokenmeter/billing';
import { COARSE_GRAINS, COARSE_GRAIN_ORDER, ROLLUP_MEASURES, utcStartSql, type CoarseGrain } from './hourly-rollups';

/**
 * Read side over the rollups (usage_monthly for whole UTC months, usage_daily for the whole days of
 * partial months, usage_hourly for the hours of partial days): dashboards and per-account totals never scan raw events. Every number comes back as a
 * string: bigint sums and exact numeric costs (up to 22 decimal places) must not pass through a JS
 * double here. Costs are trim_scale'd ("1.5", not "1.5000000000000000"), which changes the
 * notation, never the value.
 */
export interface UsageTotalsRecord {
  requests: string;
  unpricedRequests: string;
  inputTokens: string;
  outputTokens: string;
  cacheReadTokens: string;
  cacheWriteTokens: string;
  inputCostUsd: string;
  outputCostUsd: string;
  cacheReadCostUsd: string;
  cacheWriteCostUsd: string;
  costUsd: string;
}

export interface UsageSummaryRecord {
  totals: UsageTotalsRecord;
  byModel: (UsageTotalsRecord & { model: string })[];
  /** apiKeyId null: usage sent without an API key. */
  byApiKey: (UsageTotalsRecord & { apiKeyId: string | null })[];
}

export type BucketGranularity = 'hour' | 'day';
export type BucketGroupBy = 'none' | 'model' | 'api_key';

/** A time bucket: counts, the cost per token type and the total cost (the sum of the four). */
export interface UsageBucketRecord extends UsageTotalsRecord {
  start: Date;
  /** null for group_by=none, and for usage sent without an API key when grouped by api_key. */
  group: string | null;
}

/** Optional narrowing of the account reads to one model and/or one API key (both: that cell). */
export interface UsageFilter {
  model?: string;
  apiKeyId?: string;
}

export interface AccountTotalsRecord extends UsageTotalsRecord {
  accountId: string;
}

/** Keyset position in the "largest cost first" list of accounts. */
export interface AccountTotalsCursor {
  costUsd: string;
  accountId: string;
}

export interface UnpricedUsageRecord {
  model: string;
  accountId: string;
  events: string;
  inputTokens: string;
  outputTokens: string;
  cacheReadTokens: string;
  cacheWriteTokens: string;
  firstOccurredAt: Date;
  lastOccurredAt: Date;
}

// The usage_hourly measures the read side reports (see hourly-rollups.ts): all but reasoning
// tokens, which are stored and not reported yet.
const REPORTED = ROLLUP_MEASURES.filter((m) => m.column !== 'reasoning_tokens');
const sumOf = (m: (typeof ROLLUP_MEASURES)[number], zero: boolean) => {
  const sum = zero ? `coalesce(sum(${m.column}), 0)` : `sum(${m.column})`;
  return `${m.kind === 'usd' ? `trim_scale(${sum})` : sum}::text AS ${m.column}`;
};

// What each piece of a range yields besides its time: the keys the reads group by and the measures they sum.
const REPORTED_COLUMNS = REPORTED.map((m) => m.column).join(', ');
const ACCOUNT_ROW_COLUMNS = `model, api_key_id, ${REPORTED_COLUMNS}`;

// coalesce: a sum over no rows is NULL, and a count must never reach the API as null.
const SUMS = REPORTED.map((m) => sumOf(m, true)).join(',\n  ');

// A bucket has rows, so no coalesce. Per-type costs included: four more sums over rows the
// statement reads anyway, and the one place a per-bucket "cost by token type" comes from (the
// dashboard's group-by-token-type view).
const BUCKET_SUMS = REPORTED.map((m) => sumOf(m, false)).join(',\n  ');

const DAY_MS = 86_400_000;

/** The UTC start of the day or month holding `ms`, and of the next one. */
const GRAIN_START: Record<CoarseGrain, { floor: (ms: number) => number; next: (start: number) => number }> = {
  day: { floor: (ms) => Math.floor(ms / DAY_MS) * DAY_MS, next: (start) => start + DAY_MS },
  month: {
    floor: (ms) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth(), 1),
    next: (start) => Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1),
  },
};

/** Summaries and totals tile with every grain; the day time series with days and hours; the hour series with hours. */
const ALL_GRAINS = COARSE_GRAIN_ORDER;
const SERIES_GRAINS: Record<BucketGranularity, readonly CoarseGrain[]> = { day: ['day'], hour: [] };

/**
 * The rows that hold [from, to) (whole UTC hours), tiled from the coarsest rollup in: the whole
 * months inside it from usage_monthly, the whole days before the first and from the end of the
 * last whole month from usage_daily, and the hours before the first and from the end of the last
 * whole day from usage_hourly (`grains` finest first: ['day', 'month'], ['day'] or [] for hours
 * alone). The pieces tile [from, to) exactly and a month or day row is the sum of its hour rows, so
 * any sum over them equals the same sum over the hour rows alone, to the last digit; and a year is
 * ~12 rows per (key, model) plus at most ~60 days and 46 hours, whatever the account's traffic.
 * Where a grain has no whole unit inside what is left (a range inside one day or month), its piece
 * is empty ([hi, hi)) and the finer grain's leading piece covers it all.
 *
 * `where(column, lo, hi, extras)` gives each piece's predicate over its time column ('month',
 * 'day' or 'hour'), the placeholders of its bounds and those of `extra` (the caller's own values,
 * in order); each piece yields `t` (its month, day or hour) and `columns`. The caller's further
 * parameters start at `$${values.length + 1}`.
 */
function rangeRows(
  from: Date,
  to: Date,
  grains: readonly CoarseGrain[],
  columns: string,
  extra: readonly unknown[],
  where: (column: string, lo: string, hi: string, extras: string[]) => string,
) {
  // bounds[i] = [lo, hi] of level i (0: hours, then each grain): level i + 1 is what is whole in level i's.
  const bounds: [number, number][] = [[from.getTime(), to.getTime()]];
  for (const grain of grains) {
    const [lo, hi] = bounds[bounds.length - 1];
    const { floor, next } = GRAIN_START[grain];
    const first = floor(lo) === lo ? lo : next(floor(lo));
    const last = floor(hi);
    bounds.push(first < last ? [first, last] : [hi, hi]);
  }
  const levels = [{ table: 'usage_hourly', time: 'hour' }, ...grains.map((g) => COARSE_GRAINS[g])];
  const extras = extra.map((_, i) => `$${2 * levels.length + i + 1}`);
  const $lo = (level: number) => `$${2 * level + 1}`;
  const $hi = (level: number) => `$${2 * level + 2}`;
  const select = (level: number, lo: string, hi: string) =>
    `SELECT ${levels[level].time} AS t, ${columns} FROM ${levels[level].table} WHERE ${where(levels[level].time, lo, hi, extras)}`;
  const coarsest = levels.length - 1;
  const pieces = [select(coarsest, $lo(coarsest), $hi(coarsest))];
  for (let level = coarsest - 1; level >= 0; level--) {
    pieces.push(select(level, $lo(level), $lo(level + 1)), select(level, $hi(level + 1), $hi(level)));
  }
  return {
    // $1..$2n: each level's [lo, hi), finest first; then `extra`.
    values: [...bounds.flat().map((ms) => new Date(ms)), ...extra],
    sql: pieces.join('\n          UNION ALL\n          '),
  };
}

/**
 * One account's rollup rows over [from, to) (rangeRows), with the optional model / API key
 * narrowing, each combination its own statement text (no "$n IS NULL OR ..." predicates).
 *
 * The statements over these rows are deliberately not named (prepared) statements: Postgres then
 * plans each one for its actual range. A named statement switches to a generic plan after five
 * runs, which cannot know whether a range holds a month or a year and estimates a few rows; for a
 * year (5,475 day rows of the largest bench:api account) it sorts them for a GroupAggregate, 3-5x
 * the HashAggregate a custom plan picks (EXPLAIN ANALYZE: ~16 ms against ~3.3 ms), while planning
 * the statement costs ~0.3 ms (docs/benchmarks.md, "API").
 */
function accountRows(accountId: string, from: Date, to: Date, grains: readonly CoarseGrain[], filter: UsageFilter): { sql: string; values: unknown[] } {
  const extra: unknown[] = [accountId];
  const narrowing: ((p: string) => string)[] = [];
  if (filter.model !== undefined) {
    extra.push(filter.model);
    narrowing.push((p) => ` AND model = ${p}`);
  }
  if (filter.apiKeyId !== undefined) {
    extra.push(filter.apiKeyId);
    narrowing.push((p) => ` AND api_key_id = ${p}`);
  }
  return rangeRows(from, to, grains, ACCOUNT_ROW_COLUMNS, extra, (t, lo, hi, [account, ...rest]) =>
    `account_id = ${account} AND ${t} >= ${lo} AND ${t} < ${hi}${narrowing.map((n, i) => n(rest[i])).join('')}`,
  );
}

// Whitelisted SQL for the group_by values: the only user input that shapes a statement.
const GROUP_EXPR: Record<BucketGroupBy, string> = {
  none: 'NULL::text',
  model: 'model',
  // '' is how the ingestor stores "no API key" (rollup keys avoid NULL); the API shows it as null.
  api_key: "NULLIF(api_key_id, '')",
};

const ZERO_TOTALS: UsageTotalsRecord = {
  requests: '0',
  unpricedRequests: '0',
  inputTokens: '0',
  outputTokens: '0',
  cacheReadTokens: '0',
  cacheWriteTokens: '0',
  inputCostUsd: '0',
  outputCostUsd: '0',
  cacheReadCostUsd: '0',
  cacheWriteCostUsd: '0',
  costUsd: '0',
};

export class UsageReadRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Totals and per-model sums of one account over [from, to), in one scan (GROUP BY ROLLUP).
   * Rollup rows are keyed by the hour an event occurred in, so from/to must be whole hours for the
   * answer to mean exactly "events with from <= occurred_at < to"; the API enforces that.
   * `filter` narrows it to one model and/or API key ('' = usage sent without a key).
   */
  async summarizeAccount(accountId: string, from: Date, to: Date, filter: UsageFilter = {}): Promise<UsageSummaryRecord> {
    const scope = accountRows(accountId, from, to, ALL_GRAINS, filter);
    const { rows } = await this.pool.query(
      `SELECT model, NULLIF(api_key_id, '') AS api_key_id, ${SUMS}
       FROM (${scope.sql}) r
       GROUP BY model, api_key_id`,
      scope.values,
    );
    // One scan, by (model, key); the total, the per-model and the per-key breakdowns are all exact
    // sums (bigint, Decimal) of these few rows, so each breakdown adds up to the total exactly,
    // rather than three aggregations that could disagree (GROUP BY ROLLUP doubles the numeric sums).
    const cells = rows.map((r) => ({ model: r.model as string, apiKeyId: (r.api_key_id as string | null) ?? null, totals: toTotals(r) }));
    const byModel = groupTotals(cells, (c) => c.model).map(([model, t]) => ({ model, ...t }));
    const byApiKey = groupTotals(cells, (c) => c.apiKeyId).map(([apiKeyId, t]) => ({ apiKeyId, ...t }));
    return { totals: addTotals(cells.map((c) => c.totals)), byModel, byApiKey };
  }

  /**
   * Non-empty buckets only, ordered by start then group. Day buckets are UTC days (utcStartSql): whole
   * days come as one usage_daily row per (key, model), only the partial days at the edges as hours
   * (never month rows: a month row is no day's bucket).
   */
  async listBuckets(
    accountId: string,
    from: Date,
    to: Date,
    granularity: BucketGranularity,
    groupBy: BucketGroupBy,
    filter: UsageFilter = {},
  ): Promise<UsageBucketRecord[]> {
    const scope = accountRows(accountId, from, to, SERIES_GRAINS[granularity], filter);
    const bucket = granularity === 'day' ? utcStartSql('day', 't') : 't';
    const { rows } = await this.pool.query(
      `SELECT ${bucket} AS start, ${GROUP_EXPR[groupBy]} AS grp, ${BUCKET_SUMS}
       FROM (${scope.sql}) r
       GROUP BY 1, 2
       ORDER BY 1, 2 NULLS FIRST`,
      scope.values,
    );
    return rows.map((r) => ({ start: r.start as Date, group: r.grp as string | null, ...toTotals(r) }));
  }

  /**
   * Per-account totals over [from, to), largest cost first (ties by account id), keyset-paginated
   * on (cost, account id). Scans every rollup row in the range (whole months as month rows, whole
   * days as day rows): an admin report, not a dashboard.
   */
  async listAccountTotals(from: Date, to: Date, limit: number, after?: AccountTotalsCursor): Promise<AccountTotalsRecord[]> {
    const range = rangeRows(from, to, ALL_GRAINS, `account_id, ${REPORTED_COLUMNS}`, [], (t, lo, hi) => `${t} >= ${lo} AND ${t} < ${hi}`);
    const params: unknown[] = [...range.values, limit];
    const $limit = `$${params.length}`;
    let having = '';
    if (after) {
      params.push(after.costUsd, after.accountId);
      const [$cost, $account] = [`$${params.length - 1}`, `$${params.length}`];
      having = `HAVING sum(cost_usd) < ${$cost}::numeric OR (sum(cost_usd) = ${$cost}::numeric AND account_id > ${$account})`;
    }
    const { rows } = await this.pool.query(
      `SELECT account_id, ${SUMS}
       FROM (${range.sql}) r
       GROUP BY account_id
       ${having}
       ORDER BY sum(cost_usd) DESC, account_id
       LIMIT ${$limit}`,
      params,
    );
    return rows.map((r) => ({ accountId: r.account_id as string, ...toTotals(r) }));
  }

  /**
   * Unpriced events grouped by (model, account). The rollups say which (account, model, hour)
   * cells hold unpriced events (reprice keeps unpriced_requests current), so only those hours of
   * usage_events are read, through the (account_id, occurred_at) index, instead of every event.
   */
  async listUnpricedUsage(filter: { accountId?: string; model?: string; from?: Date; to?: Date }): Promise<UnpricedUsageRecord[]> {
    const params: unknown[] = [];
    const cell: string[] = ['unpriced_requests > 0'];
    const event: string[] = ['e.price_version_id IS NULL'];
    if (filter.accountId !== undefined) {
      params.push(filter.accountId);
      cell.push(`account_id = $${params.length}`);
    }
    if (filter.model !== undefined) {
      params.push(filter.model);
      cell.push(`model = $${params.length}`);
    }
    if (filter.from !== undefined) {
      params.push(filter.from);
      cell.push(`hour >= date_trunc('hour', $${params.length}::timestamptz, 'UTC')`);
      event.push(`e.occurred_at >= $${params.length}`);
    }
    if (filter.to !== undefined) {
      params.push(filter.to);
      cell.push(`hour < $${params.length}`);
      event.push(`e.occurred_at < $${params.length}`);
    }
    const { rows } = await this.pool.query(
      `WITH cells AS (
         SELECT DISTINCT account_id, model, hour FROM usage_hourly WHERE ${cell.join(' AND ')}
       )
       SELECT e.model, e.account_id, count(*)::text AS events,
              sum(e.input_tokens)::text AS input_tokens, sum(e.output_tokens)::text AS output_tokens,
              sum(e.cache_read_tokens)::text AS cache_read_tokens, sum(e.cache_write_tokens)::text AS cache_write_tokens,
              min(e.occurred_at) AS first_occurred_at, max(e.occurred_at) AS last_occurred_at
       FROM cells c
       JOIN usage_events e ON e.account_id = c.account_id AND e.model = c.model
        AND e.occurred_at >= c.hour AND e.occurred_at < c.hour + interval '1 hour'
       WHERE ${event.join(' AND ')}
       GROUP BY e.model, e.account_id
       ORDER BY e.model, count(*) DESC, e.account_id`,
      params,
    );
    return rows.map((r) => ({
      model: r.model,
      accountId: r.account_id,
      events: r.events,
      inputTokens: r.input_tokens,
      outputTokens: r.output_tokens,
      cacheReadTokens: r.cache_read_tokens,
      cacheWriteTokens: r.cache_write_tokens,
      firstOccurredAt: r.first_occurred_at,
      lastOccurredAt: r.last_occurred_at,
    }));
  }
}

/** Exact totals per key, largest cost first (ties by key, no-key last). */
function groupTotals<C extends { totals: UsageTotalsRecord }, K extends string | null>(cells: C[], keyOf: (c: C) => K): [K, UsageTotalsRecord][] {
  const groups = new Map<K, UsageTotalsRecord[]>();
  for (const c of cells) {
    const key = keyOf(c);
    groups.set(key, [...(groups.get(key) ?? []), c.totals]);
  }
  return [...groups].map(([key, rows]): [K, UsageTotalsRecord] => [key, addTotals(rows)]).sort(([ka, a], [kb, b]) => {
    const byCost = new Decimal(b.costUsd).comparedTo(a.costUsd);
    if (byCost !== 0) return byCost;
    if (ka === null || kb === null) return ka === null ? 1 : -1;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function addTotals(rows: UsageTotalsRecord[]): UsageTotalsRecord {
  const total = { ...ZERO_TOTALS };
  for (const r of rows) {
    for (const k of COUNT_FIELDS) total[k] = (BigInt(total[k]) + BigInt(r[k])).toString();
    for (const k of COST_FIELDS) total[k] = new Decimal(total[k]).plus(r[k]).toString();
  }
  return total;
}

const COUNT_FIELDS = ['requests', 'unpricedRequests', 'inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'] as const;
const COST_FIELDS = ['inputCostUsd', 'outputCostUsd', 'cacheReadCostUsd', 'cacheWriteCostUsd', 'costUsd'] as const;

function toTotals(r: Record<string, string>): UsageTotalsRecord {
  return {
    requests: r.requests,
    unpricedRequests: r.unpriced_requests,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cacheReadTokens: r.cache_read_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    inputCostUsd: r.input_cost_usd,
    outputCostUsd: r.output_cost_usd,
    cacheReadCostUsd: r.cache_read_cost_usd,
    cacheWriteCostUsd: r.cache_write_cost_usd,
    costUsd: r.cost_usd,
  };
}
