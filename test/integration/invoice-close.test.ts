import { IngestionIncompleteError } from '@tokenmeter/invoicing';
import { aUsageEvent } from '../factories/usage-events';
import { ingest, invoicingFor, readyToCloseNovember, setIngestProgress, useDatabaseAndStripeProxy } from '../helpers/invoicing';

describe('closing a billing period', () => {
  const { db, proxy } = useDatabaseAndStripeProxy();
  let now: Date;

  beforeEach(async () => {
    await readyToCloseNovember(db);
    now = new Date('2026-12-02T00:00:00Z');
  });

  const svc = () => invoicingFor(db, proxy.url, () => now);
  const invoiceRows = async () =>
    (await db.pool.query(`SELECT account_id, period, status, total_minor::text, trim_scale(total_exact_usd)::text AS total_exact_usd FROM invoices ORDER BY account_id, period`)).rows;
  const linesOf = async (invoiceId: string) =>
    (await db.pool.query(`SELECT line_key, description, amount_minor::text, stripe_pushed_at FROM invoice_lines WHERE invoice_id = $1 ORDER BY id`, [invoiceId])).rows;

  it('bills each account with usage once, at real prices, and creates nothing for an account without usage', async () => {
    await ingest(db, [
      aUsageEvent({ account_id: 'acct_a', usage: { input_tokens: 3_456_789, output_tokens: 12_345_678, cache_read_tokens: 9_876_543 } }),
      aUsageEvent({ account_id: 'acct_b', occurred_at: '2026-11-30T23:59:59.999Z', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
      // December usage is not on November's invoice.
      aUsageEvent({ account_id: 'acct_b', occurred_at: '2026-12-01T00:00:00.000Z', usage: { input_tokens: 5, output_tokens: 5 } }),
      aUsageEvent({ account_id: 'acct_c', occurred_at: '2026-12-01T00:30:00.000Z', usage: { input_tokens: 5, output_tokens: 5 } }),
    ]);
    const summary = await svc().closer.close('2026-11', { finalize: false });
    expect(summary).toMatchObject({ accounts: 2, created: 2, noUsage: 0 });
    expect(await invoiceRows()).toEqual([
      { account_id: 'acct_a', period: '2026-11', status: 'draft', total_minor: '3246', total_exact_usd: '32.451503169' },
      { account_id: 'acct_b', period: '2026-11', status: 'draft', total_minor: '57', total_exact_usd: '0.5714' },
    ]);
    const a = summary.results.find((r) => r.accountId === 'acct_a')!;
    expect((await linesOf(a.invoiceId!)).map((l) => l.description)).toEqual([
      'deepseek-r1 input tokens, 3,456,789 x $0.5714 per 1M, Nov 2026',
      'deepseek-r1 output tokens, 12,345,678 x $2.2857 per 1M, Nov 2026',
      'deepseek-r1 cache read tokens, 9,876,543 x $0.2286 per 1M, Nov 2026',
    ]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM usage_events WHERE invoice_id IS NULL`);
    expect(rows[0].n).toBe(2); // the two December events
  });

  it('yields one invoice per account and period when closes run twice and concurrently, pushing each to Stripe once', async () => {
    const events = ['acct_a', 'acct_b', 'acct_c', 'acct_d'].flatMap((account_id) => [
      aUsageEvent({ account_id, model: 'gpt-4o', usage: { input_tokens: 1000, output_tokens: 1000 } }),
      aUsageEvent({ account_id, usage: { input_tokens: 2000, output_tokens: 10 } }),
    ]);
    await ingest(db, events);
    const before = proxy.count('POST', '/v1/invoices');
    const runs = await Promise.all([svc().closer.close('2026-11'), svc().closer.close('2026-11'), svc().closer.close('2026-11')]);
    await svc().closer.close('2026-11');
    expect(runs.reduce((n, r) => n + r.created, 0)).toBe(4);
    const invoices = await invoiceRows();
    expect(invoices).toHaveLength(4);
    expect(invoices.every((i) => i.status === 'finalized')).toBe(true);
    expect(proxy.count('POST', '/v1/invoices') - before).toBe(4);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS lines, count(stripe_pushed_at)::int AS pushed FROM invoice_lines`);
    expect(rows[0]).toEqual({ lines: 16, pushed: 16 });
  });

  it('updates a draft with events that arrive before it is finalized', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    const first = await svc().closer.close('2026-11', { finalize: false });
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-20T00:00:00Z', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    const second = await svc().closer.close('2026-11', { finalize: false });
    expect(second.results[0]).toMatchObject({ outcome: 'updated', invoiceId: first.results[0].invoiceId, claimedEvents: 1 });
    expect((await linesOf(first.results[0].invoiceId!)).map((l) => [l.description, l.amount_minor])).toEqual([
      ['deepseek-r1 input tokens, 2,000,000 x $0.5714 per 1M, Nov 2026', '114'],
    ]);
  });

  it('bills usage that arrives after its month was finalized on the next invoice, as an adjustment line naming its month', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    const nov = await svc().closer.close('2026-11');
    expect(nov.finalized).toBe(1);
    // Late: November usage delivered after November was finalized, plus December usage.
    await ingest(db, [
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-29T12:00:00Z', usage: { input_tokens: 0, output_tokens: 1_000_000 } }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-12-03T12:00:00Z', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
    ]);
    // Closing November again changes nothing: it is final.
    const again = await svc().closer.close('2026-11');
    expect(again.results.map((r) => r.outcome)).toEqual(['already_final']);
    now = new Date('2027-01-02T00:00:00Z');
    await setIngestProgress(db, new Date('2027-01-01T02:00:00Z'));
    const dec = await svc().closer.close('2026-12');
    expect((await linesOf(dec.results[0].invoiceId!)).map((l) => [l.line_key, l.description, l.amount_minor])).toEqual([
      ['2026-12:deepseek-r1:input:0.5714', 'deepseek-r1 input tokens, 1,000,000 x $0.5714 per 1M, Dec 2026', '57'],
      ['2026-11:deepseek-r1:output:2.2857', 'deepseek-r1 output tokens, 1,000,000 x $2.2857 per 1M (usage from Nov 2026)', '229'],
    ]);
    expect((await invoiceRows()).map((i) => [i.period, i.total_minor])).toEqual([
      ['2026-11', '57'],
      ['2026-12', '286'],
    ]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM usage_events WHERE invoice_id IS NULL`);
    expect(rows[0].n).toBe(0);
  });

  it('shows a discount override as a negative line, and the invoice still equals the stored event costs', async () => {
    await db.pool.query(
      `INSERT INTO accounts (id) VALUES ('acct_a') ON CONFLICT DO NOTHING;
       INSERT INTO account_price_overrides (account_id, model_id, kind, discount_percent, effective_from)
       VALUES ('acct_a', 'deepseek-r1', 'discount', 10, '2026-01-01T00:00:00Z')`,
    );
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', usage: { input_tokens: 1_000_000, output_tokens: 1_000_000 } })]);
    const { rows: ev } = await db.pool.query(`SELECT trim_scale(cost_usd)::text AS cost_usd, price_override_id FROM usage_events`);
    const summary = await svc().closer.close('2026-11', { finalize: false });
    const lines = await linesOf(summary.results[0].invoiceId!);
    expect(ev[0].price_override_id).not.toBeNull();
    expect(lines.map((l) => [l.description, l.amount_minor])).toEqual([
      ['deepseek-r1 input tokens, 1,000,000 x $0.5714 per 1M, Nov 2026', '57'],
      ['deepseek-r1 output tokens, 1,000,000 x $2.2857 per 1M, Nov 2026', '229'],
      ['deepseek-r1 discount 10%, Nov 2026', '-29'],
    ]);
    expect((await invoiceRows())[0].total_exact_usd).toBe(ev[0].cost_usd);
  });

  it('refuses to close before ingestion is complete past the grace period, unless forced (and audited)', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a' })]);
    await setIngestProgress(db, new Date('2026-12-01T00:30:00Z'));
    await expect(svc().closer.close('2026-11')).rejects.toBeInstanceOf(IngestionIncompleteError);
    now = new Date('2026-12-01T00:10:00Z');
    await expect(svc().closer.close('2026-11')).rejects.toThrow(/not complete past 2026-12-01T01:00:00.000Z/);
    const forced = await svc().closer.close('2026-11', { force: true, finalize: false, actorKeyId: 'key_admin' });
    expect(forced).toMatchObject({ forced: true, created: 1 });
    const { rows } = await db.pool.query(`SELECT action, actor_key_id, target_id, before, after FROM audit_log ORDER BY id`);
    expect(rows).toEqual([
      {
        action: 'invoices.close.forced',
        actor_key_id: 'key_admin',
        target_id: '2026-11',
        before: null,
        after: { lagging: [{ partition: 'clock', maxOccurredAt: '2026-12-01T00:10:00.000Z' }], requiredUntil: '2026-12-01T01:00:00.000Z' },
      },
      { action: 'invoices.close', actor_key_id: 'key_admin', target_id: '2026-11', before: null, after: { created: 1, updated: 0, finalized: 0, sync_failed: 0 } },
    ]);
  });

  it('writes nothing on a dry run, and can close one account', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a' }), aUsageEvent({ account_id: 'acct_b' })]);
    const dry = await svc().closer.close('2026-11', { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, created: 2 });
    expect(await invoiceRows()).toEqual([]);
    const one = await svc().closer.close('2026-11', { accountId: 'acct_b', finalize: false });
    expect(one.results.map((r) => r.accountId)).toEqual(['acct_b']);
    expect((await invoiceRows()).map((i) => i.account_id)).toEqual(['acct_b']);
  });

  it('reconciles raw events, rollups, invoices and Stripe, and flags a rollup that disagrees', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a' }), aUsageEvent({ account_id: 'acct_b' })]);
    await svc().closer.close('2026-11', { finalize: false });
    const ok = await svc().reconciliation.reconcile('2026-11');
    expect(ok.mismatched_accounts).toBe(0);
    expect(ok.accounts_detail[0]).toMatchObject({ account_id: 'acct_a', raw_total_usd: '0.00175997', rollup_total_usd: '0.00175997', invoice_exact_usd: '0.00175997', invoice_total_minor: '0' });
    expect(ok.accounts_detail[0]).toMatchObject({ rollup_daily_total_usd: '0.00175997', rollup_monthly_total_usd: '0.00175997', rollup_monthly_requests: '1' });
    // Each grain on its own: an hour row, or only the month row, off from the events.
    await db.pool.query(`UPDATE usage_hourly SET cost_usd = cost_usd + 0.0000000001 WHERE account_id = 'acct_b'`);
    await db.pool.query(`UPDATE usage_monthly SET requests = requests + 1 WHERE account_id = 'acct_a'`);
    const bad = await svc().reconciliation.reconcile('2026-11');
    expect(bad.accounts_detail.map((d) => [d.account_id, d.mismatches])).toEqual([
      ['acct_a', ['raw_vs_rollup']],
      ['acct_b', ['raw_vs_rollup']],
    ]);
    expect(bad.accounts_detail[0]).toMatchObject({ raw_events: '1', rollup_requests: '1', rollup_daily_requests: '1', rollup_monthly_requests: '2' });
  });
});
