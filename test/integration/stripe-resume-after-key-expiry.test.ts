import type { Database } from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';
import { aUsageEvent } from '../factories/usage-events';
import { FakeStripe } from '../helpers/fake-stripe';
import { invoicingFor, readyToCloseNovember } from '../helpers/invoicing';
import { openTestDatabase } from '../helpers/tokenmeter-db';

const ACCOUNTS = ['acct_a', 'acct_b', 'acct_c', 'acct_d'];

/**
 * Stripe keeps idempotency keys for 24 hours. A push interrupted mid-way (Stripe did the work,
 * the answer was lost) and resumed after that must still end with one customer, one invoice and
 * exactly one Stripe line per line: the resumed push finds what exists by our ids in metadata.
 * The fake Stripe stores what it creates, so the test can count it, and forgets keys on demand;
 * it takes 2 lines per add_lines call, so an invoice's 5 lines go in 3 calls (2 + 2 + 1).
 */
describe('a Stripe push resumed after its idempotency keys expired', () => {
  let db: Database;
  const now = () => new Date('2026-12-02T00:00:00Z');

  beforeAll(() => {
    db = openTestDatabase();
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    await readyToCloseNovember(
      db,
      ACCOUNTS.flatMap((account_id, i) => [
        aUsageEvent({ account_id, usage: { input_tokens: 1_234_567 * (i + 1), output_tokens: 7_654_321 + i, cache_read_tokens: 1_000_000 * (i + 1) } }),
        aUsageEvent({ account_id, model: 'gpt-4o', usage: { input_tokens: 100_000 + i, output_tokens: 50_000 * (i + 1) } }),
      ]),
    );
  });

  const ourInvoices = async () =>
    new Map(
      (await db.pool.query(`SELECT id, account_id, status, total_minor::text, stripe_invoice_id, stripe_customer_id, sync_error FROM invoices`)).rows.map(
        (r) => [r.account_id as string, r],
      ),
    );
  const ourLines = async (invoiceId: string) =>
    (await db.pool.query(`SELECT line_key, amount_minor::text, stripe_pushed_at FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_key`, [invoiceId])).rows;
  const linesOfCall = (p: Record<string, unknown>) => p.lines as { metadata: Record<string, string> }[];

  /**
   * The interrupted push: drafts first (to know our invoice ids), then a push where, per account,
   * a different step reaches Stripe and loses its answer: acct_a the customer, acct_b the
   * invoice, acct_c its 2nd add_lines call (lines 3-4 of 5; lines 1-2 marked pushed before it),
   * acct_d the finalize.
   */
  async function interruptedPush(fake: FakeStripe) {
    await invoicingFor(db, fake, now).closer.close('2026-11', { finalize: false });
    const drafts = await ourInvoices();
    expect([...drafts.keys()].sort()).toEqual(ACCOUNTS);
    fake.inject({ operation: 'customers.create', when: 'after', match: (p) => p.accountId === 'acct_a', times: 1 });
    fake.inject({ operation: 'invoices.create', when: 'after', match: (p) => (p.metadata as Record<string, string>).account_id === 'acct_b', times: 1 });
    fake.inject({
      operation: 'invoices.addLines',
      when: 'after',
      match: (p) => linesOfCall(p)[0].metadata.tokenmeter_invoice_id === drafts.get('acct_c')!.id,
      skip: 1,
      times: 1,
    });
    fake.inject({
      operation: 'invoices.finalizeInvoice',
      when: 'after',
      match: (p) => fake.invoices.get(p.stripeInvoiceId as string)?.metadata.account_id === 'acct_d',
      times: 1,
    });
    const first = await invoicingFor(db, fake, now).closer.close('2026-11');
    expect(first.syncFailed).toBe(4);
    const failed = await ourInvoices();
    expect(ACCOUNTS.map((a) => [a, failed.get(a).status, failed.get(a).sync_error.split(':')[0]])).toEqual([
      ['acct_a', 'sync_failed', 'customers.create'],
      ['acct_b', 'sync_failed', 'invoices.create'],
      ['acct_c', 'sync_failed', 'invoices.addLines'],
      ['acct_d', 'sync_failed', 'invoices.finalizeInvoice'],
    ]);
    expect((await ourLines(failed.get('acct_c').id)).filter((l) => l.stripe_pushed_at).length).toBe(2);
    expect(fake.itemsOf(failed.get('acct_c').stripe_invoice_id)).toHaveLength(4);
    // A first push looks nothing up: nothing of it can exist in Stripe yet.
    expect(fake.calls.filter((c) => /search|list|retrieve/.test(c))).toEqual([]);

    // More than 24 hours later: Stripe has forgotten every key, and is reachable again.
    fake.forgetIdempotencyKeys();
    fake.clearFaults();
  }

  it('ends with exactly one customer, one finalized invoice and the right items per account', async () => {
    const fake = new FakeStripe(2);
    await interruptedPush(fake);

    // A new process resumes: the close run picks up every unfinished push of the period.
    const rerun = await invoicingFor(db, fake, now).closer.close('2026-11');
    expect(rerun.results.map((r) => [r.accountId, r.outcome, r.status])).toEqual(ACCOUNTS.map((a) => [a, 'resumed', 'finalized']));

    const invoices = await ourInvoices();
    for (const account of ACCOUNTS) {
      const ours = invoices.get(account);
      const lines = await ourLines(ours.id);
      const stripe = fake.objectsOf(account);
      expect(stripe.customers.map((c) => c.id)).toEqual([ours.stripe_customer_id]);
      const { rows: [acct] } = await db.pool.query('SELECT stripe_customer_id FROM accounts WHERE id = $1', [account]);
      expect(acct.stripe_customer_id).toBe(ours.stripe_customer_id);
      expect(stripe.invoices.map((i) => [i.id, i.status, i.metadata.tokenmeter_invoice_id])).toEqual([[ours.stripe_invoice_id, 'open', ours.id]]);
      // One Stripe line per line, with the line's cents, and every line marked pushed.
      const items = stripe.items.map((i) => [i.metadata.line_key, i.amountMinor.toString()]).sort();
      expect(items).toEqual(lines.map((l) => [l.line_key, l.amount_minor]));
      expect(lines).toHaveLength(5);
      expect(lines.every((l) => l.stripe_pushed_at instanceof Date)).toBe(true);
      expect(stripe.invoices[0].totalMinor!.toString()).toBe(ours.total_minor);
    }

    // Reconciliation against what the fake Stripe holds: every total agrees.
    const report = await invoicingFor(db, fake, now).reconciliation.reconcile('2026-11');
    expect(report.mismatched_accounts).toBe(0);
    expect(report.accounts_detail.map((d) => d.stripe_total_minor)).toEqual(report.accounts_detail.map((d) => d.invoice_total_minor));
  });

  it('would duplicate without the lookups: after 24 hours the keys alone protect nothing', async () => {
    const fake = new FakeStripe(2);
    await interruptedPush(fake);
    // The same Stripe, but every lookup by metadata finds nothing.
    const blind = lookupsFindNothing(fake);
    await invoicingFor(db, blind, now).closer.close('2026-11');
    const invoices = await ourInvoices();
    expect(fake.objectsOf('acct_a').customers).toHaveLength(2);
    expect(fake.objectsOf('acct_b').invoices).toHaveLength(2);
    // 4 lines were there; the 3 unmarked ones went again (2 of them duplicates).
    expect(fake.itemsOf(invoices.get('acct_c').stripe_invoice_id)).toHaveLength(7);
    const report = await invoicingFor(db, fake, now).reconciliation.reconcile('2026-11', { accountId: 'acct_c' });
    expect(report.accounts_detail[0].mismatches).toEqual(['stripe_total_vs_invoice']);
  });
});

function lookupsFindNothing(fake: FakeStripe): StripeGateway {
  const nothing: Partial<StripeGateway> = {
    getCustomerByAccountId: async () => undefined,
    listInvoices: async () => [],
    listInvoiceLines: async () => [],
  };
  return new Proxy(fake, {
    get(target, prop) {
      if (prop in nothing) return nothing[prop as keyof StripeGateway];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
