/**
 * The read-side benchmark data set, shared by bench:api (the JSON routes) and bench:web (the
 * dashboard pages): October 2026, 10 million usage events from 5,000 accounts by default, in a
 * scratch database (tokenmeter_bench_api unless --database names another). `--months N` spreads
 * the same events over the N months ending with October 2026 instead (12: a year of usage, for
 * the year-long dashboard reads).
 *
 * Seeded FAST, in SQL: usage_events from INSERT ... SELECT FROM generate_series (time-ordered,
 * skewed accounts: account i gets a share ~ i^(-2/3), so acct_00000 is the largest), then
 * usage_hourly with one INSERT ... SELECT ... GROUP BY over those events, usage_daily from
 * usage_hourly and usage_monthly from usage_daily. Those GROUP BYs are exactly what the ingestor maintains incrementally in the same
 * transaction as each batch of events (libs/db usage-events.repository.ts), so the rollups are the
 * ones production would hold. Rows are written
 * hour by hour, accounts within an hour, as time-ordered ingest batches append them, so their
 * physical layout (which decides how many pages an account's month touches) matches too.
 * A seeded database is reused when it already holds the same events/accounts (reseed forces), after
 * applying the migrations it does not have yet (a new rollup's migration backfills it from the
 * data set's own rows, as it would in production).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import path from 'node:path';
import { loadConfig } from '@tokenmeter/config';
import { SEED_MODELS, SEED_PRICE_VERSIONS } from '@tokenmeter/billing';
import { applyMigrations } from '@tokenmeter/db/migrations';
import { integerArg, numberArg, stringArg } from './args';
import { ROLLUP_COLUMNS, ensureEventPartitions, grainColumns, grainOfRollupSql, rollupOfEventsSql } from '@tokenmeter/db';
import { databaseUrlFor } from './scratch-database';
import { withClient } from '../test/helpers/db';

const ROOT = path.resolve(__dirname, '..');
const CHUNK = 500_000;
const MIGRATIONS = path.join(ROOT, 'prisma/migrations');

export const MONTH_START = '2026-10-01T00:00:00.000Z';
export const MONTH_END = '2026-11-01T00:00:00.000Z';
/** The year ending with that month (365 days): the data set's whole span with --months 12. */
export const YEAR_START = '2025-11-01T00:00:00.000Z';
/** The largest account of the data set: the worst case for every per-account read. */
export const LARGEST_ACCOUNT = 'acct_00000';
export const ADMIN_URL = loadConfig().databaseUrl;

/** `--database NAME` (a scratch name, tokenmeter_bench_...), default tokenmeter_bench_api. */
export function databaseArg(): string {
  return stringArg('database', 'tokenmeter_bench_api', /^tokenmeter_bench_[a-z0-9_]{1,40}$/);
}

export interface DatasetOptions {
  database: string;
  events: number;
  accounts: number;
  /** How many months, ending with October 2026, the events are spread over. */
  months: number;
  reseed: boolean;
  log: (msg: string) => void;
}

/** The data set's flags, the same for bench:api and bench:web: --events, --accounts, --months, --reseed, --database. */
export function datasetArgs(log: (msg: string) => void): DatasetOptions {
  return {
    database: databaseArg(),
    events: Math.floor(numberArg('events', 10_000_000)),
    accounts: Math.floor(numberArg('accounts', 5_000)),
    months: integerArg('months', 1, 12),
    reseed: process.argv.includes('--reseed'),
    log,
  };
}

/** The data set's fields of a benchmark's final JSON line. */
export function datasetJson(opts: DatasetOptions, facts: DatasetFacts) {
  return {
    events: opts.events,
    accounts: opts.accounts,
    months: opts.months,
    account_events: facts.accountEvents,
    account_rollup_rows: facts.accountRollupRows,
    account_daily_rows: facts.accountDailyRows,
    account_monthly_rows: facts.accountMonthlyRows,
  };
}

export interface DatasetFacts {
  accountEvents: number;
  accountRollupRows: number;
  accountDailyRows: number;
  accountMonthlyRows: number;
  rollupRows: number;
}

// One pg client for one piece of work, always closed: the test helpers' own.
export { withClient };

/**
 * The start both read-side benchmarks share: the data set seeded (or reused), its largest
 * account's size logged, and an account key for that account.
 */
export async function prepareDataset(opts: DatasetOptions): Promise<{ url: string; facts: DatasetFacts; key: string }> {
  const url = await ensureDataset(opts);
  const facts = await datasetFacts(url);
  opts.log(
    `measured account ${LARGEST_ACCOUNT}: ${facts.accountEvents.toLocaleString('en')} events, ` +
      `${facts.accountRollupRows.toLocaleString('en')} hourly rollup rows (of ${facts.rollupRows.toLocaleString('en')}), ` +
      `${facts.accountDailyRows.toLocaleString('en')} daily, ${facts.accountMonthlyRows.toLocaleString('en')} monthly`,
  );
  return { url, facts, key: await createAccountKey(url) };
}

/** The data set's URL, seeding it first unless it already holds the same events/accounts (or reseed). */
export async function ensureDataset(opts: DatasetOptions): Promise<string> {
  const url = databaseUrlFor(ADMIN_URL, opts.database);
  if (!opts.reseed && (await alreadySeeded(opts, url))) {
    opts.log(`reusing ${opts.database} (${opts.events} events, ${opts.accounts} accounts, ${opts.months} months); --reseed to rebuild`);
    const applied = await applyMigrations(url, MIGRATIONS, opts.log);
    // A new rollup backfilled by its migration: vacuumed and analysed like the seeded tables (the
    // rest is all-visible already, so this costs little).
    if (applied.length > 0) await withClient(url, (c) => c.query('VACUUM ANALYZE'));
  } else {
    await seed(opts, url);
  }
  return url;
}

/** How big the largest account's October (or [from, to)) is, next to the whole data set. */
export function datasetFacts(url: string, accountId = LARGEST_ACCOUNT, from = MONTH_START, to = MONTH_END): Promise<DatasetFacts> {
  const count = async (c: Client, sql: string) => Number((await c.query(sql, [accountId, from, to])).rows[0].count);
  return withClient(url, async (c) => ({
    accountEvents: await count(c, 'SELECT count(*) FROM usage_events WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3'),
    accountRollupRows: await count(c, 'SELECT count(*) FROM usage_hourly WHERE account_id = $1 AND hour >= $2 AND hour < $3'),
    accountDailyRows: await count(c, 'SELECT count(*) FROM usage_daily WHERE account_id = $1 AND day >= $2 AND day < $3'),
    accountMonthlyRows: await count(c, 'SELECT count(*) FROM usage_monthly WHERE account_id = $1 AND month >= $2 AND month < $3'),
    rollupRows: Number((await c.query('SELECT count(*) FROM usage_hourly')).rows[0].count),
  }));
}

/** An account key for `accountId`, inserted as the admin route would store it (sha256 of the secret). */
export async function createAccountKey(url: string, accountId = LARGEST_ACCOUNT): Promise<string> {
  const prefix = `tm_live_${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8)}`;
  const key = `${prefix}_${randomBytes(24).toString('base64url').replace(/[-_]/g, 'y').slice(0, 32)}`;
  await withClient(url, (c) =>
    c.query('INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ($1, $2, $3, $4, $5)', [
      `key_bench_${prefix}`, prefix, createHash('sha256').update(key).digest('hex'), 'account', accountId,
    ]),
  );
  return key;
}

async function alreadySeeded(opts: DatasetOptions, url: string): Promise<boolean> {
  const exists = await withClient(ADMIN_URL, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [opts.database])).rowCount === 1);
  if (!exists) return false;
  return withClient(url, async (c) => {
    const { rows } = await c.query("SELECT to_regclass('bench_meta') IS NOT NULL AS present");
    if (!rows[0].present) return false;
    // A data set seeded before --months existed has no months column: one month.
    const meta = await c.query('SELECT * FROM bench_meta');
    const row = meta.rows[0];
    return row?.events === String(opts.events) && row?.accounts === opts.accounts && (row?.months ?? 1) === opts.months;
  });
}

async function seed(opts: DatasetOptions, url: string): Promise<void> {
  const { database, events: EVENTS, accounts: ACCOUNTS, months: MONTHS, log } = opts;
  const t0 = Date.now();
  await withClient(ADMIN_URL, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${database} TEMPLATE template0`);
  });
  await applyMigrations(url, MIGRATIONS, () => undefined);
  await withClient(url, async (c) => {
    for (const m of SEED_MODELS) {
      await c.query('INSERT INTO models (id, display_name, provider, context_window, max_output_tokens) VALUES ($1, $2, $3, $4, $5)', [
        m.id, m.displayName, m.provider, m.contextWindow, m.maxOutputTokens,
      ]);
    }
    for (const v of SEED_PRICE_VERSIONS) {
      await c.query(
        'INSERT INTO price_versions (model_id, effective_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok) VALUES ($1, $2, $3, $4, $5, $6)',
        [v.modelId, v.effectiveFrom, v.inputPerMTok, v.outputPerMTok, v.cacheReadPerMTok, v.cacheWritePerMTok],
      );
    }
    await c.query(`INSERT INTO accounts (id) SELECT 'acct_' || lpad(a::text, 5, '0') FROM generate_series(0, $1 - 1) a`, [ACCOUNTS]);
    // Pick-list of models with their price version, weighted like the ingest benchmark's traffic.
    await c.query(`CREATE TABLE bench_models AS
      SELECT (row_number() OVER ()) - 1 AS idx, pv.id AS pv_id, pv.model_id, pv.input_per_mtok, pv.output_per_mtok, pv.cache_read_per_mtok,
             coalesce(pv.cache_write_per_mtok, pv.input_per_mtok) AS cache_write_per_mtok
      FROM unnest(ARRAY['deepseek-r1','deepseek-r1','deepseek-r1','deepseek-v3','gpt-4o','gpt-4o-mini','claude-sonnet-4']) AS m(model_id)
      JOIN price_versions pv USING (model_id)`);
    // Secondary indexes are built once after the load: far cheaper than maintaining them per row.
    const { rows: indexes } = await c.query(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_events' AND indexname NOT LIKE '%_pkey'",
    );
    for (const ix of indexes) await c.query(`DROP INDEX ${ix.indexname}`);
    log(`schema ready in ${Date.now() - t0} ms; inserting ${EVENTS.toLocaleString('en')} events over ${ACCOUNTS} accounts and ${MONTHS} month(s) (2 writers)`);

    const end = new Date(MONTH_END);
    const start = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - MONTHS, 1)).toISOString();
    const spanMs = end.getTime() - Date.parse(start);
    // usage_events is partitioned by month: every month the events span (and the end's, harmless if empty).
    await ensureEventPartitions(c, Array.from({ length: MONTHS + 1 }, (_, i) => new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - MONTHS + i, 1))));
    let next = 0;
    let done = 0;
    const started = Date.now();
    const writer = async () => {
      await withClient(url, async (w) => {
        await w.query('SET synchronous_commit = off');
        for (;;) {
          const lo = next;
          if (lo >= EVENTS) return;
          next += CHUNK;
          const hi = Math.min(lo + CHUNK, EVENTS) - 1;
          await w.query(INSERT_EVENTS_SQL, [lo, hi, EVENTS, ACCOUNTS, start, spanMs]);
          done += hi - lo + 1;
          const s = (Date.now() - started) / 1000;
          log(`  events ${done.toLocaleString('en')} / ${EVENTS.toLocaleString('en')} (${Math.round(done / s).toLocaleString('en')}/s)`);
        }
      });
    };
    await Promise.all([writer(), writer()]);

    let t = Date.now();
    await c.query("SET maintenance_work_mem = '1GB'");
    for (const ix of indexes) await c.query(ix.indexdef);
    log(`secondary indexes rebuilt in ${Date.now() - t} ms`);

    // The event_id dedupe the ingest path writes with every event (docs/scaling.md, "event_id dedupe").
    t = Date.now();
    await c.query('INSERT INTO usage_event_ids (event_id, account_id, occurred_at, payload_hash) SELECT event_id, account_id, occurred_at, payload_hash FROM usage_events');
    log(`usage_event_ids filled in ${Date.now() - t} ms`);

    await c.query("SET work_mem = '512MB'");
    for (const [table, sql] of [
      ['usage_hourly', ROLLUP_SQL],
      ['usage_daily', DAILY_SQL],
      ['usage_monthly', MONTHLY_SQL],
    ]) {
      t = Date.now();
      const { rows: rollupIndexes } = await c.query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT LIKE '%_pkey'",
        [table],
      );
      for (const ix of rollupIndexes) await c.query(`DROP INDEX ${ix.indexname}`);
      const rollup = await c.query(sql);
      for (const ix of rollupIndexes) await c.query(ix.indexdef);
      log(`${table}: ${rollup.rowCount?.toLocaleString('en')} rollup rows in ${Date.now() - t} ms`);
    }
    t = Date.now();
    await c.query('VACUUM ANALYZE usage_events');
    await c.query('VACUUM ANALYZE usage_hourly');
    await c.query('VACUUM ANALYZE usage_event_ids');
    await c.query('VACUUM ANALYZE usage_daily');
    await c.query('VACUUM ANALYZE usage_monthly');
    log(`vacuum analyze in ${Date.now() - t} ms`);
    await c.query('DROP TABLE bench_models');
    await c.query('CREATE TABLE bench_meta AS SELECT $1::bigint AS events, $2::int AS accounts, $3::int AS months', [EVENTS, ACCOUNTS, MONTHS]);
  });
  log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// One row per g: time-ordered across the span (as a gateway publishes), account skewed by
// floor(accounts * r^3), a model from the pick-list, canonical usage, exact costs at the model's rate.
const INSERT_EVENTS_SQL = `
INSERT INTO usage_events (event_id, account_id, api_key_id, model, request_id, occurred_at, received_at,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, usage_raw, usage_format,
  payload_hash, price_version_id, input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd,
  priced_at, source)
SELECT 'evt_' || lpad(s.g::text, 10, '0'), 'acct_' || lpad(s.a::text, 5, '0'), 'key_' || s.a || '_' || (s.g % 3), m.model_id,
  NULL, s.at, s.at, s.it, s.ot, s.crt, s.cwt, 0,
  json_build_object('input_tokens', s.it, 'output_tokens', s.ot, 'cache_read_tokens', s.crt, 'cache_write_tokens', s.cwt),
  'canonical', md5(s.g::text), m.pv_id,
  s.it * m.input_per_mtok / 1000000, s.ot * m.output_per_mtok / 1000000,
  s.crt * m.cache_read_per_mtok / 1000000, s.cwt * m.cache_write_per_mtok / 1000000,
  (s.it * m.input_per_mtok + s.ot * m.output_per_mtok + s.crt * m.cache_read_per_mtok + s.cwt * m.cache_write_per_mtok) / 1000000,
  s.at, 'kafka'
FROM (
  SELECT g,
    least(floor($4 * power(random(), 3))::int, $4 - 1) AS a,
    floor(random() * 7)::int AS mi,
    $5::timestamptz + (g::float8 * $6 / $3) * interval '1 millisecond' AS at,
    (50 + random() * 4000)::int AS it, (20 + random() * 1200)::int AS ot,
    (CASE WHEN random() < 0.4 THEN random() * 3000 ELSE 0 END)::int AS crt,
    (CASE WHEN random() < 0.1 THEN random() * 800 ELSE 0 END)::int AS cwt
  FROM generate_series($1::bigint, $2::bigint) AS g
) s
JOIN bench_models m ON m.idx = s.mi`;

// The rollup the ingestor maintains incrementally, in one pass (libs/db hourly-rollups.ts),
// written hour by hour as time-ordered ingest batches would.
const ROLLUP_SQL = `
INSERT INTO usage_hourly (${ROLLUP_COLUMNS.join(', ')})
${rollupOfEventsSql('usage_events', 'ORDER BY 4, 1, 2, 3')}`;

// The day rows the ingestor adds from each chunk's hour rows, here from all of them, day by day.
const DAILY_SQL = `
INSERT INTO usage_daily (${grainColumns('day').join(', ')})
${grainOfRollupSql('day', 'usage_hourly', 'ORDER BY 4, 1, 2, 3')}`;

// The month rows, from the day rows (as the migration backfills them), month by month.
const MONTHLY_SQL = `
INSERT INTO usage_monthly (${grainColumns('month').join(', ')})
${grainOfRollupSql('month', 'usage_daily', 'ORDER BY 4, 1, 2, 3', 'day')}`;
