import { createDatabase, seedPriceBook as seedPriceBookRows, type Database } from '@tokenmeter/db';
import { TEST_DATABASE_URL } from './db';

export { TEST_DATABASE_URL };

/** The migrated test database (scripts/test.sh applies migrations before jest starts). */
export function openTestDatabase(): Database {
  return createDatabase(TEST_DATABASE_URL, 5);
}

const TABLES = [
  'credit_alerts',
  'credit_alert_fundings',
  'credit_ledger_entries',
  'credit_grants',
  'budget_alerts',
  'budget_windows',
  'budgets',
  'webhook_delivery_attempts',
  'webhook_deliveries',
  'webhook_endpoints',
  'web_sessions',
  'dashboard_links',
  'invoice_lines',
  'invoices',
  'stripe_webhook_events',
  'account_price_overrides',
  'api_keys',
  'usage_events',
  'usage_event_ids',
  'usage_hourly',
  'usage_daily',
  'usage_monthly',
  'rejected_events',
  'event_conflicts',
  'ingest_progress',
  'accounts',
  'price_versions',
  'models',
];

/**
 * Empties every table a test can write. audit_log is append-only (a trigger refuses DELETE and
 * UPDATE; TRUNCATE does not fire row triggers), so tests truncate it too.
 */
export async function resetDatabase(db: Database): Promise<void> {
  await db.pool.query(`TRUNCATE ${TABLES.join(', ')}, audit_log RESTART IDENTITY CASCADE`);
}

export async function seedPriceBook(db: Database): Promise<void> {
  await seedPriceBookRows(db.pool);
}

/**
 * The test database for the tests of one describe block, as jest hooks: before each test empty
 * tables and the seed price book (register it first, so the block's own beforeEach comes after),
 * closed after the block. The handle is usable at once (its pool connects on first use).
 */
export function useTestDatabase(): Database {
  const db = openTestDatabase();
  beforeEach(async () => {
    await resetDatabase(db);
    await seedPriceBook(db);
  });
  afterAll(() => db.close());
  return db;
}

/**
 * What each rollup column must hold, as an aggregate over the usage_events rows of its
 * (account, api key, model, UTC hour) in usage_hourly, UTC day in usage_daily, or UTC month in
 * usage_monthly. Written out here rather than taken from libs/db (whose write paths derive their
 * SQL from hourly-rollups.ts, and the day and month rows from the hour rows), so that the checks
 * below are an independent oracle, of every table straight from the events. `columnsChecked`
 * refuses to run if a rollup table has a column this list does not cover, so "rollups equal raw
 * events" always means every column of every table.
 */
const ROLLUP_OF_EVENTS = {
  requests: 'count(*)',
  unpriced_requests: 'count(*) FILTER (WHERE price_version_id IS NULL)',
  input_tokens: 'coalesce(sum(input_tokens), 0)',
  output_tokens: 'coalesce(sum(output_tokens), 0)',
  cache_read_tokens: 'coalesce(sum(cache_read_tokens), 0)',
  cache_write_tokens: 'coalesce(sum(cache_write_tokens), 0)',
  reasoning_tokens: 'coalesce(sum(reasoning_tokens), 0)',
  input_cost_usd: 'coalesce(sum(input_cost_usd), 0)',
  output_cost_usd: 'coalesce(sum(output_cost_usd), 0)',
  cache_read_cost_usd: 'coalesce(sum(cache_read_cost_usd), 0)',
  cache_write_cost_usd: 'coalesce(sum(cache_write_cost_usd), 0)',
  cost_usd: 'coalesce(sum(cost_usd), 0)',
} as const;
/** Each rollup table, its time key, and that key of an event (UTC, whatever the session time zone). */
const ROLLUP_TABLES = [
  { table: 'usage_hourly', time: 'hour', ofEvent: "date_trunc('hour', occurred_at, 'UTC')" },
  { table: 'usage_daily', time: 'day', ofEvent: "date_trunc('day', occurred_at, 'UTC')" },
  { table: 'usage_monthly', time: 'month', ofEvent: "date_trunc('month', occurred_at, 'UTC')" },
] as const;
const keyColumns = (time: string) => ['account_id', 'api_key_id', 'model', time];
const MEASURES = Object.keys(ROLLUP_OF_EVENTS) as (keyof typeof ROLLUP_OF_EVENTS)[];
const COSTS = MEASURES.filter((c) => c.endsWith('_usd'));

const checkedDatabases = new WeakSet<Database>();

async function columnsChecked(db: Database): Promise<void> {
  if (checkedDatabases.has(db)) return;
  for (const { table, time } of ROLLUP_TABLES) {
    const { rows } = await db.pool.query<{ column_name: string }>(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position',
      [table],
    );
    const uncovered = rows.map((r) => r.column_name).filter((c) => !keyColumns(time).includes(c) && !(c in ROLLUP_OF_EVENTS));
    const gone = [...keyColumns(time), ...MEASURES].filter((c) => !rows.some((r) => r.column_name === c));
    if (uncovered.length > 0 || gone.length > 0) {
      throw new Error(`test/helpers/tokenmeter-db.ts ROLLUP_OF_EVENTS is out of date: ${table} has [${uncovered}] it does not check, and lacks [${gone}]`);
    }
  }
  checkedDatabases.add(db);
}

/**
 * Sums of every rollup column, as text (costs without trailing zeros: values, not scales).
 * `unpriced` is unpriced_requests.
 */
export type Totals = { [K in Exclude<keyof typeof ROLLUP_OF_EVENTS, 'unpriced_requests'>]: string } & { unpriced: string };

const totalsColumn = (c: string, expr: string) =>
  `${COSTS.includes(c as (typeof COSTS)[number]) ? `trim_scale(${expr})` : expr}::text AS ${c === 'unpriced_requests' ? 'unpriced' : c}`;

/**
 * Totals of every rollup column straight from raw events, and from the rollups: the two must
 * always agree (`expect(t.rollup).toEqual(t.raw)`). `rollup` is usage_hourly's totals, except
 * that a column whose usage_daily or usage_monthly total differs reads "usage_hourly X,
 * usage_daily Y, usage_monthly Z", so that one comparison holds every table to the events. For the per-row comparison, which also catches
 * a row credited to the wrong account, key, model, hour or day, see rollupDifferences.
 */
export async function totals(db: Database, accountId?: string): Promise<{ raw: Totals; rollup: Totals }> {
  await columnsChecked(db);
  const where = accountId ? 'WHERE account_id = $1' : '';
  const params = accountId ? [accountId] : [];
  const raw = await db.pool.query<Totals>(
    `SELECT ${MEASURES.map((c) => totalsColumn(c, ROLLUP_OF_EVENTS[c])).join(', ')} FROM usage_events ${where}`,
    params,
  );
  const tables = await Promise.all(
    ROLLUP_TABLES.map(async ({ table }) => {
      const { rows } = await db.pool.query<Totals>(
        `SELECT ${MEASURES.map((c) => totalsColumn(c, `coalesce(sum(${c}), 0)`)).join(', ')} FROM ${table} ${where}`,
        params,
      );
      return rows[0];
    }),
  );
  const [hourly] = tables;
  const rollup = { ...hourly };
  for (const k of Object.keys(rollup) as (keyof Totals)[]) {
    if (tables.some((t) => t[k] !== hourly[k])) rollup[k] = tables.map((t, i) => `${ROLLUP_TABLES[i].table} ${t[k]}`).join(', ');
  }
  return { raw: raw.rows[0], rollup };
}

export async function storedEventCount(db: Database): Promise<number> {
  return Number((await db.pool.query('SELECT count(*) FROM usage_events')).rows[0].count);
}

/**
 * Rows of usage_hourly, usage_daily and usage_monthly that differ from the same aggregation over usage_events,
 * in any column (both ways: a rollup row with no events, events with no or a different rollup
 * row), each with its `table`. [] when they agree.
 */
export async function rollupDifferences(db: Database): Promise<Record<string, string>[]> {
  await columnsChecked(db);
  const differences: Record<string, string>[] = [];
  for (const { table, time, ofEvent } of ROLLUP_TABLES) {
    const { rows } = await db.pool.query(`
      WITH raw AS (
        SELECT account_id, api_key_id, model, ${ofEvent} AS ${time},
               ${MEASURES.map((c) => `${ROLLUP_OF_EVENTS[c]} AS ${c}`).join(', ')}
        FROM usage_events GROUP BY 1, 2, 3, 4),
      rolled AS (SELECT ${[...keyColumns(time), ...MEASURES].join(', ')} FROM ${table})
      (SELECT '${table}' AS "table", 'raw' AS side, * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rolled) a)
      UNION ALL
      (SELECT '${table}' AS "table", 'rollup' AS side, * FROM (SELECT * FROM rolled EXCEPT SELECT * FROM raw) b)
      LIMIT 20`);
    differences.push(...rows);
  }
  return differences;
}
