/**
 * Invoice close benchmark: `npm run bench:invoices [-- --accounts 10000 --events-per-account 6 --database tokenmeter_bench_invoices]`
 *
 * 1. recreates a scratch database (--database, default tokenmeter_bench_invoices; give another name
 *    to run beside someone else's run), migrates it, seeds the price book;
 * 2. seeds October 2026 usage for N accounts with set-based SQL (costs = tokens x rate / 1e6,
 *    exact, as the ingestor stores them; hourly rollups built from those same rows, so raw and
 *    rollup totals agree), and marks ingestion complete past the grace period;
 * 3. closes 2026-10 with the invoicer's own wiring against stripe-mock (STRIPE_API_BASE):
 *    drafts, Stripe customer + invoice + add_lines (up to 100 lines a call) + finalize for every account;
 * 4. prints progress on stderr and a final JSON line on stdout.
 */
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { recreateSeededDatabase } from './scratch-database';
import { loadConfig } from '@tokenmeter/config';
import { addHoursToCoarseRollupsSql, ensureEventPartitions } from '@tokenmeter/db';
import { progressBar } from '../apps/invoicer/src/progress';
import { createInvoicer } from '../apps/invoicer/src/wiring';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '10000' },
    'events-per-account': { type: 'string', default: '6' },
    database: { type: 'string', default: 'tokenmeter_bench_invoices' },
  },
});
const ACCOUNTS = Number(values.accounts);
const EVENTS_PER_ACCOUNT = Number(values['events-per-account']);
const BENCH_DB = values.database!;
const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? loadConfig().databaseUrl;
const BENCH_URL = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${BENCH_DB}`;
  return u.toString();
})();

async function prepareDatabase(): Promise<void> {
  await recreateSeededDatabase(ADMIN_URL, BENCH_DB);
}

/** N accounts x E events in October, spread over 3 models; costs exact from the price book. */
async function seedUsage(): Promise<number> {
  const c = new Client({ connectionString: BENCH_URL });
  await c.connect();
  await c.query(`INSERT INTO accounts (id) SELECT 'acct_' || lpad(a::text, 6, '0') FROM generate_series(1, $1) a`, [ACCOUNTS]);
  await ensureEventPartitions(c, [new Date('2026-10-01T00:00:00Z')]);
  const { rowCount } = await c.query(
    `WITH ev AS (
       SELECT a, e,
              (ARRAY['deepseek-r1', 'gpt-4o', 'claude-sonnet-4'])[1 + (a + e) % 3] AS model,
              timestamptz '2026-10-01T00:00:00Z' + ((a * 7919 + e * 104729) % (31 * 24 * 3600)) * interval '1 second' AS occurred_at,
              (1000 + (a * 31 + e * 17) % 50000)::bigint AS input_tokens,
              (100 + (a * 13 + e * 7) % 8000)::bigint AS output_tokens,
              ((a * 11 + e * 3) % 20000)::bigint AS cache_read_tokens
       FROM generate_series(1, $1) a, generate_series(1, $2) e
     ), priced AS (
       SELECT ev.*, v.id AS price_version_id,
              ev.input_tokens * v.input_per_mtok / 1000000 AS input_cost,
              ev.output_tokens * v.output_per_mtok / 1000000 AS output_cost,
              ev.cache_read_tokens * v.cache_read_per_mtok / 1000000 AS cache_read_cost
       FROM ev JOIN price_versions v ON v.model_id = ev.model
     )
     INSERT INTO usage_events (event_id, account_id, api_key_id, model, occurred_at, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, usage_raw, usage_format, payload_hash, price_version_id,
       input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd, priced_at, source)
     SELECT 'evt_' || a || '_' || e, 'acct_' || lpad(a::text, 6, '0'), 'key_bench', model, occurred_at,
       input_tokens, output_tokens, cache_read_tokens, 0, 0, '{}'::json, 'bench', md5(a || ':' || e), price_version_id,
       input_cost, output_cost, cache_read_cost, 0, input_cost + output_cost + cache_read_cost, now(), 'http'
     FROM priced`,
    [ACCOUNTS, EVENTS_PER_ACCOUNT],
  );
  await c.query('INSERT INTO usage_event_ids (event_id, account_id, occurred_at, payload_hash) SELECT event_id, account_id, occurred_at, payload_hash FROM usage_events');
  await c.query(
    `INSERT INTO usage_hourly (account_id, api_key_id, model, hour, requests, unpriced_requests, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd)
     SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC'), count(*), 0, sum(input_tokens), sum(output_tokens),
       sum(cache_read_tokens), 0, 0, sum(input_cost_usd), sum(output_cost_usd), sum(cache_read_cost_usd), 0, sum(cost_usd)
     FROM usage_events GROUP BY 1, 2, 3, 4`,
  );
  // The day and month rollups the ingestor would have written with those hour rows.
  await c.query(addHoursToCoarseRollupsSql('usage_hourly'));
  await c.query(`INSERT INTO ingest_progress (topic, partition, next_offset, max_occurred_at) VALUES ('gateway.usage.v1', 0, 0, '2026-11-01T02:00:00Z')`);
  await c.query('ANALYZE');
  await c.end();
  return rowCount ?? 0;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  process.stderr.write(`[bench] preparing ${BENCH_DB}: ${ACCOUNTS} accounts x ${EVENTS_PER_ACCOUNT} events\n`);
  await prepareDatabase();
  const events = await seedUsage();
  process.stderr.write(`[bench] seeded ${events} events + rollups in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);

  const config = loadConfig({ ...process.env, DATABASE_URL: BENCH_URL, LOG_LEVEL: 'warn' });
  const invoicer = createInvoicer(config, { kafka: false });
  const started = Date.now();
  // Each bar's rate counts from its own phase's start, so the push's rate is the push alone.
  const draftsBar = progressBar('[bench] drafts');
  let pushBar: ReturnType<typeof progressBar> | undefined;
  let draftsDoneAt: number | undefined;
  const summary = await invoicer.closer.close('2026-10', {
    onProgress: (done, total) => {
      if (draftsDoneAt === undefined) {
        draftsBar(done, total);
        if (done === total) {
          draftsDoneAt = Date.now();
          pushBar = progressBar('[bench] stripe');
        }
      } else pushBar!(done, total);
    },
  });
  const finishedAt = Date.now();
  const seconds = (finishedAt - started) / 1000;
  const draftSeconds = ((draftsDoneAt ?? finishedAt) - started) / 1000;
  const { rows } = await invoicer.db.pool.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'finalized')::int AS f FROM invoices`);
  const stripeRequests = invoicer.stripe.requestCount;
  await invoicer.close();
  if (summary.syncFailed > 0) process.stderr.write(`[bench] WARNING: ${summary.syncFailed} invoices sync_failed\n`);
  const result = {
    accounts: ACCOUNTS,
    invoices: rows[0].n,
    finalized: rows[0].f,
    events,
    seconds: Number(seconds.toFixed(2)),
    invoices_per_s: Number((rows[0].n / seconds).toFixed(1)),
    // The close's two phases: drafts (one transaction per account) then the Stripe push.
    draft_seconds: Number(draftSeconds.toFixed(2)),
    push_invoices_per_s: Number((rows[0].n / Math.max(seconds - draftSeconds, 0.001)).toFixed(1)),
    stripe_requests: stripeRequests,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
