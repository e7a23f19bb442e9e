import { createDatabase, seedPriceBook as seedPriceBookRows, type Database } from '@tokenmeter/db';

export const TEST_DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter_test';

/** The migrated test database (scripts/test.sh applies migrations before jest starts). */
export function openTestDatabase(): Database {
  return createDatabase(TEST_DATABASE_URL, 5);
}

const TABLES = [
  'web_sessions',
  'dashboard_links',
  'invoice_lines',
  'invoices',
  'stripe_webhook_events',
  'account_price_overrides',
  'api_keys',
  'usage_events',
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

export interface Totals {
  requests: string;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cost_usd: string;
  unpriced: string;
}

/** Totals straight from raw events, and from the hourly rollups: the two must always agree. */
export async function totals(db: Database, accountId?: string): Promise<{ raw: Totals; rollup: Totals }> {
  const where = accountId ? 'WHERE account_id = $1' : '';
  const params = accountId ? [accountId] : [];
  const raw = await db.pool.query<Totals>(
    `SELECT count(*)::text AS requests, coalesce(sum(input_tokens),0)::text AS input_tokens,
            coalesce(sum(output_tokens),0)::text AS output_tokens, coalesce(sum(cache_read_tokens),0)::text AS cache_read_tokens,
            coalesce(sum(cost_usd),0)::text AS cost_usd, count(*) FILTER (WHERE price_version_id IS NULL)::text AS unpriced
     FROM usage_events ${where}`,
    params,
  );
  const rollup = await db.pool.query<Totals>(
    `SELECT coalesce(sum(requests),0)::text AS requests, coalesce(sum(input_tokens),0)::text AS input_tokens,
            coalesce(sum(output_tokens),0)::text AS output_tokens, coalesce(sum(cache_read_tokens),0)::text AS cache_read_tokens,
            coalesce(sum(cost_usd),0)::text AS cost_usd, coalesce(sum(unpriced_requests),0)::text AS unpriced
     FROM usage_hourly ${where}`,
    params,
  );
  return { raw: normalise(raw.rows[0]), rollup: normalise(rollup.rows[0]) };
}

/** numeric sums come back with scale (e.g. 3.0857000000000000); compare values, not scales. */
function normalise(t: Totals): Totals {
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  return { ...t, cost_usd: trim(t.cost_usd) };
}

export async function storedEventCount(db: Database): Promise<number> {
  return Number((await db.pool.query('SELECT count(*) FROM usage_events')).rows[0].count);
}

const ROLLUP_COLUMNS = [
  'requests', 'unpriced_requests', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens',
  'input_cost_usd', 'output_cost_usd', 'cache_read_cost_usd', 'cache_write_cost_usd', 'cost_usd',
] as const;

/**
 * usage_hourly rows that differ from a GROUP BY over usage_events, in any column (both ways:
 * a rollup row with no events, events with no or a different rollup row). [] when they agree.
 */
export async function rollupDifferences(db: Database): Promise<Record<string, string>[]> {
  const { rows } = await db.pool.query(`
    WITH raw AS (
      SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC') AS hour,
             count(*)::bigint AS requests, count(*) FILTER (WHERE price_version_id IS NULL)::bigint AS unpriced_requests,
             sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
             sum(cache_read_tokens)::bigint AS cache_read_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
             sum(reasoning_tokens)::bigint AS reasoning_tokens,
             coalesce(sum(input_cost_usd), 0) AS input_cost_usd, coalesce(sum(output_cost_usd), 0) AS output_cost_usd,
             coalesce(sum(cache_read_cost_usd), 0) AS cache_read_cost_usd, coalesce(sum(cache_write_cost_usd), 0) AS cache_write_cost_usd,
             coalesce(sum(cost_usd), 0) AS cost_usd
      FROM usage_events GROUP BY 1, 2, 3, 4),
    rolled AS (SELECT account_id, api_key_id, model, hour, ${ROLLUP_COLUMNS.join(', ')} FROM usage_hourly)
    (SELECT 'raw' AS side, * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rolled) a)
    UNION ALL
    (SELECT 'rollup' AS side, * FROM (SELECT * FROM rolled EXCEPT SELECT * FROM raw) b)
    LIMIT 20`);
  return rows;
}
