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
 * What each usage_hourly column must hold, as an aggregate over the usage_events rows of its
 * (account, api key, model, UTC hour). Written out here rather than taken from libs/db (whose
 * write paths derive their SQL from hourly-rollups.ts), so that the checks below are an
 * independent oracle. `columnsChecked` refuses to run if usage_hourly has a column this list
 * does not cover, so "rollups equal raw events" always means every column.
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
const KEY_COLUMNS = ['account_id', 'api_key_id', 'model', 'hour'];
const MEASURES = Object.keys(ROLLUP_OF_EVENTS) as (keyof typeof ROLLUP_OF_EVENTS)[];
const COSTS = MEASURES.filter((c) => c.endsWith('_usd'));

const checkedDatabases = new WeakSet<Database>();

async function columnsChecked(db: Database): Promise<void> {
  if (checkedDatabases.has(db)) return;
  const { rows } = await db.pool.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'usage_hourly' ORDER BY ordinal_position",
  );
  const uncovered = rows.map((r) => r.column_name).filter((c) => !KEY_COLUMNS.includes(c) && !(c in ROLLUP_OF_EVENTS));
  const gone = MEASURES.filter((c) => !rows.some((r) => r.column_name === c));
  if (uncovered.length > 0 || gone.length > 0) {
    throw new Error(`test/helpers/tokenmeter-db.ts ROLLUP_OF_EVENTS is out of date: usage_hourly has [${uncovered}] it does not check, and lacks [${gone}]`);
  }
  checkedDatabases.add(db);
}

/**
 * Sums of every usage_hourly column, as text (costs without trailing zeros: values, not scales).
 * `unpriced` is unpriced_requests.
 */
export type Totals = { [K in Exclude<keyof typeof ROLLUP_OF_EVENTS, 'unpriced_requests'>]: string } & { unpriced: string };

const totalsColumn = (c: string, expr: string) =>
  `${COSTS.includes(c as (typeof COSTS)[number]) ? `trim_scale(${expr})` : expr}::text AS ${c === 'unpriced_requests' ? 'unpriced' : c}`;

/**
 * Totals of every usage_hourly column straight from raw events, and from the hourly rollups: the
 * two must always agree (`expect(t.rollup).toEqual(t.raw)`). For the per-row comparison, which
 * also catches a row credited to the wrong account, key, model or hour, see rollupDifferences.
 */
export async function totals(db: Database, accountId?: string): Promise<{ raw: Totals; rollup: Totals }> {
  await columnsChecked(db);
  const where = accountId ? 'WHERE account_id = $1' : '';
  const params = accountId ? [accountId] : [];
  const raw = await db.pool.query<Totals>(
    `SELECT ${MEASURES.map((c) => totalsColumn(c, ROLLUP_OF_EVENTS[c])).join(', ')} FROM usage_events ${where}`,
    params,
  );
  const rollup = await db.pool.query<Totals>(
    `SELECT ${MEASURES.map((c) => totalsColumn(c, `coalesce(sum(${c}), 0)`)).join(', ')} FROM usage_hourly ${where}`,
    params,
  );
  return { raw: raw.rows[0], rollup: rollup.rows[0] };
}

export async function storedEventCount(db: Database): Promise<number> {
  return Number((await db.pool.query('SELECT count(*) FROM usage_events')).rows[0].count);
}

/**
 * usage_hourly rows that differ from the same aggregation over usage_events, in any column (both
 * ways: a rollup row with no events, events with no or a different rollup row). [] when they agree.
 */
export async function rollupDifferences(db: Database): Promise<Record<string, string>[]> {
  await columnsChecked(db);
  const { rows } = await db.pool.query(`
    WITH raw AS (
      SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC') AS hour,
             ${MEASURES.map((c) => `${ROLLUP_OF_EVENTS[c]} AS ${c}`).join(', ')}
      FROM usage_events GROUP BY 1, 2, 3, 4),
    rolled AS (SELECT ${[...KEY_COLUMNS, ...MEASURES].join(', ')} FROM usage_hourly)
    (SELECT 'raw' AS side, * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rolled) a)
    UNION ALL
    (SELECT 'rollup' AS side, * FROM (SELECT * FROM rolled EXCEPT SELECT * FROM raw) b)
    LIMIT 20`);
  return rows;
}
