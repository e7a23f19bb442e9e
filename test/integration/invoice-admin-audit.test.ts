import { aUsageEvent } from '../factories/usage-events';
import { invoicingFor, readyToCloseNovember, useDatabaseAndStripeProxy } from '../helpers/invoicing';

/**
 * The admin invoice actions audit themselves: finalize, retry-sync and void write their entry
 * (through AuditLogRepository) in the transaction that records their outcome, so the outcome and
 * its entry commit together or not at all.
 */
describe('admin invoice actions and their audit entries', () => {
  const { db, proxy } = useDatabaseAndStripeProxy();
  const now = () => new Date('2026-12-02T00:00:00Z');
  const svc = () => invoicingFor(db, proxy.url, now);

  const audit = async () =>
    (await db.pool.query(`SELECT action, actor_key_id, target_type, target_id, before, after FROM audit_log ORDER BY id`)).rows;
  const statusOf = async (id: string) => (await db.pool.query(`SELECT status FROM invoices WHERE id = $1`, [id])).rows[0].status;
  /** Makes every audit_log insert fail, as a full disk or a broken constraint would. */
  const refuseAuditWrites = () =>
    db.pool.query(`
      CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log refused (test)'; END $$;
      CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_audit();`);
  const allowAuditWrites = () => db.pool.query(`DROP TRIGGER IF EXISTS test_refuse_audit ON audit_log`);

  let drafts: Record<string, string>;
  beforeEach(async () => {
    await allowAuditWrites();
    await readyToCloseNovember(db, [aUsageEvent({ account_id: 'acct_a' }), aUsageEvent({ account_id: 'acct_b', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    // The scheduler's close: nobody asked, nothing audited.
    const closed = await svc().closer.close('2026-11', { finalize: false });
    drafts = Object.fromEntries(closed.results.map((r) => [r.accountId, r.invoiceId!]));
    expect(await audit()).toEqual([]);
  });
  afterEach(() => allowAuditWrites());

  it('writes one entry per action with the actor, the status before and the outcome after', async () => {
    const a = drafts.acct_a;
    const b = drafts.acct_b;
    await svc().sync.finalize(a, 'key_admin_1');
    await svc().sync.void(a, 'key_admin_1');
    proxy.inject({ match: 'POST /v1/invoices', mode: 'before_503', times: Infinity });
    expect((await svc().sync.finalize(b, 'key_admin_2')).status).toBe('sync_failed');
    proxy.clearFaults();
    expect((await svc().sync.retrySync(b, null)).status).toBe('finalized');

    const stripeIdOf = async (id: string) => (await db.pool.query(`SELECT stripe_invoice_id FROM invoices WHERE id = $1`, [id])).rows[0].stripe_invoice_id;
    const stripeA = await stripeIdOf(a);
    const stripeB = await stripeIdOf(b);
    const entries = await audit();
    expect(entries.map(({ after, ...e }) => ({ ...e, after: { ...after, sync_error: after.sync_error?.split(':')[0] ?? null } }))).toEqual([
      {
        action: 'invoices.finalize',
        actor_key_id: 'key_admin_1',
        target_type: 'invoice',
        target_id: a,
        before: { status: 'draft', stripe_invoice_id: null },
        after: { status: 'finalized', stripe_invoice_id: stripeA, sync_error: null },
      },
      {
        action: 'invoices.void',
        actor_key_id: 'key_admin_1',
        target_type: 'invoice',
        target_id: a,
        before: { status: 'finalized', stripe_invoice_id: stripeA },
        after: { status: 'void', stripe_invoice_id: stripeA, sync_error: null },
      },
      {
        action: 'invoices.finalize',
        actor_key_id: 'key_admin_2',
        target_type: 'invoice',
        target_id: b,
        before: { status: 'draft', stripe_invoice_id: null },
        after: { status: 'sync_failed', stripe_invoice_id: null, sync_error: 'invoices.create' },
      },
      {
        action: 'invoices.retry_sync',
        actor_key_id: null,
        target_type: 'invoice',
        target_id: b,
        before: { status: 'sync_failed', stripe_invoice_id: null },
        after: { status: 'finalized', stripe_invoice_id: stripeB, sync_error: null },
      },
    ]);
  });

  it('records no outcome without its entry: when the entry cannot be written, the action does not happen', async () => {
    await refuseAuditWrites();
    await expect(svc().sync.void(drafts.acct_a, 'key_admin_1')).rejects.toThrow(/audit_log refused/);
    expect(await statusOf(drafts.acct_a)).toBe('draft');
    // The push reaches Stripe, but "finalized" (and even "sync_failed") is only stored with its entry:
    // the invoice stays finalizing, which the next close run or retry-sync resumes.
    await expect(svc().sync.finalize(drafts.acct_b, 'key_admin_1')).rejects.toThrow(/audit_log refused/);
    expect(await statusOf(drafts.acct_b)).toBe('finalizing');
    expect(await audit()).toEqual([]);

    await allowAuditWrites();
    await svc().sync.void(drafts.acct_a, 'key_admin_1');
    expect(await statusOf(drafts.acct_a)).toBe('void');
    expect((await svc().sync.retrySync(drafts.acct_b, 'key_admin_1')).status).toBe('finalized');
    expect((await audit()).map((e) => [e.action, e.target_id, e.before.status, e.after.status])).toEqual([
      ['invoices.void', drafts.acct_a, 'draft', 'void'],
      ['invoices.retry_sync', drafts.acct_b, 'finalizing', 'finalized'],
    ]);
  });
});
