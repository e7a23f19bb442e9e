import { idempotencyKeys } from '@tokenmeter/invoicing';
import { aUsageEvent } from '../factories/usage-events';
import { invoicingFor, readyToCloseNovember, useDatabaseAndStripeProxy } from '../helpers/invoicing';
import { ADD_LINES_PATH, addedLines } from '../helpers/stripe-proxy';
import { TcpProxy } from '../helpers/tcp-proxy';

// Each call that meets the cut network takes ~2 s to give up: 4 attempts, and the SDK retries a
// closed connection once more by itself, after at least 500 ms.
jest.setTimeout(60_000);

const ACCOUNTS = ['acct_1', 'acct_2', 'acct_3', 'acct_4', 'acct_5'];
const LINES_PER_INVOICE = 5;

/**
 * Stripe becomes unreachable in the middle of the monthly close (the network to it is cut, as a
 * TCP proxy in front of stripe-mock), then comes back. The close pushes invoices one at a time
 * (STRIPE_MAX_IN_FLIGHT=1), so the cut lands at a known point: after acct_1 and acct_2 are
 * finalized, on acct_3's add_lines call (which reaches Stripe, its answer is lost). Everything
 * from there fails, naming the Stripe operation; the next close run finishes the job with exactly
 * one invoice per account and exactly its lines, counted from what really reached Stripe.
 *
 *   SDK gateway -> TcpProxy (cut here) -> StripeProxy (idempotency, ledger) -> stripe-mock
 */
describe('Stripe unreachable in the middle of a monthly close, then back', () => {
  const { db, proxy: stripe } = useDatabaseAndStripeProxy();
  let network: TcpProxy;
  const now = () => new Date('2026-12-02T00:00:00Z');

  beforeAll(async () => {
    network = new TcpProxy('127.0.0.1', stripe.port);
    await network.start();
  });
  afterAll(() => network.stop());
  beforeEach(async () => {
    await readyToCloseNovember(
      db,
      ACCOUNTS.flatMap((account_id, i) => [
        aUsageEvent({ account_id, usage: { input_tokens: 1_000_000 + i, output_tokens: 2_000_000 * (i + 1), cache_read_tokens: 3_000_000 } }),
        aUsageEvent({ account_id, model: 'gpt-4o', usage: { input_tokens: 400_000 * (i + 1), output_tokens: 100_000 } }),
      ]),
    );
  });

  it('fails the rest with the operation named, and a rerun leaves one invoice per account with exactly its items', async () => {
    const svc = () => invoicingFor(db, `http://127.0.0.1:${network.port}`, now, { maxInFlight: 1 });
    let addLinesCalls = 0;
    stripe.onRequest = (method, path) => {
      // One add_lines call per invoice (5 lines): the third is acct_3's.
      if (method === 'POST' && ADD_LINES_PATH.test(path) && ++addLinesCalls === 3) network.cut();
    };

    const first = await svc().closer.close('2026-11');
    stripe.onRequest = undefined;
    expect(first).toMatchObject({ accounts: 5, created: 5, finalized: 2, syncFailed: 3 });
    const statuses = async () =>
      (await db.pool.query(`SELECT account_id, status, sync_error FROM invoices ORDER BY account_id`)).rows.map((r) => [
        r.account_id,
        r.status,
        r.sync_error?.split(':')[0] ?? null,
      ]);
    expect(await statuses()).toEqual([
      ['acct_1', 'finalized', null],
      ['acct_2', 'finalized', null],
      ['acct_3', 'sync_failed', 'invoices.addLines'],
      ['acct_4', 'sync_failed', 'customers.create'],
      ['acct_5', 'sync_failed', 'customers.create'],
    ]);

    // Stripe is back. The next close run (the scheduler's next tick) resumes the failed pushes.
    network.restore();
    const rerun = await svc().closer.close('2026-11');
    expect(rerun).toMatchObject({ accounts: 0, finalized: 3, syncFailed: 0 });
    expect(await statuses()).toEqual(ACCOUNTS.map((a) => [a, 'finalized', null]));
    // acct_3's add_lines call had reached Stripe when the network went: its key replayed it, once.
    expect(stripe.replays).toBe(1);

    // stripe-mock validates every request against Stripe's OpenAPI spec (lookups included): none refused.
    expect(stripe.ledger.filter((e) => e.status >= 300)).toEqual([]);
    const reached = (path: string | RegExp, key?: string) =>
      stripe.ledger.filter((e) => e.method === 'POST' && (typeof path === 'string' ? e.path === path : path.test(e.path)) && (key === undefined || e.idempotencyKey === key));
    const { rows: invoices } = await db.pool.query(
      `SELECT i.id, i.account_id, i.total_minor::text, i.stripe_invoice_id, i.stripe_customer_id, a.stripe_customer_id AS account_customer
       FROM invoices i JOIN accounts a ON a.id = i.account_id ORDER BY i.account_id`,
    );
    expect(invoices).toHaveLength(5);
    for (const inv of invoices) {
      const customers = reached('/v1/customers', idempotencyKeys.customer(inv.account_id));
      expect(customers.map((e) => e.responseId)).toEqual([inv.stripe_customer_id]);
      expect(inv.account_customer).toBe(inv.stripe_customer_id);
      expect(reached('/v1/invoices', idempotencyKeys.invoice(inv.id)).map((e) => e.responseId)).toEqual([inv.stripe_invoice_id]);
      // Exactly one add_lines call reached Stripe for this invoice, under the key of its lines,
      // carrying each line once with its cents; every line is marked pushed.
      const { rows: lines } = await db.pool.query(`SELECT line_key, amount_minor::text, stripe_pushed_at FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_key`, [inv.id]);
      expect(lines).toHaveLength(LINES_PER_INVOICE);
      expect(lines.every((l) => l.stripe_pushed_at instanceof Date)).toBe(true);
      const sent = reached(`/v1/invoices/${inv.stripe_invoice_id}/add_lines`);
      expect(sent.map((e) => e.idempotencyKey)).toEqual([idempotencyKeys.lines(inv.id, lines.map((l) => l.line_key))]);
      const added = addedLines(sent[0].params);
      expect(added.map((l) => [l.metadata.line_key, l.amount]).sort()).toEqual(lines.map((l) => [l.line_key, l.amount_minor]));
      expect(reached(`/v1/invoices/${inv.stripe_invoice_id}/finalize`)).toHaveLength(1);
      // The Stripe total (the sum of the lines it received) is exactly our total.
      expect(added.reduce((sum, l) => sum + BigInt(l.amount), 0n).toString()).toBe(inv.total_minor);
    }
    expect(reached(ADD_LINES_PATH)).toHaveLength(5);
    expect(reached('/v1/invoiceitems')).toHaveLength(0);

    // Our side reconciles exactly: raw vs rollups, header vs lines vs claimed events. (stripe-mock
    // answers any retrieve with a canned total, hence the totals from the ledger above.)
    const report = await svc().reconciliation.reconcile('2026-11', { withStripe: false });
    expect(report).toMatchObject({ accounts: 5, mismatched_accounts: 0 });
  });
});
