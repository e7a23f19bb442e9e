import type { Database } from '@tokenmeter/db';
import { idempotencyKeys } from '@tokenmeter/invoicing';
import { aUsageEvent } from '../factories/usage-events';
import { invoicingFor, readyToCloseNovember } from '../helpers/invoicing';
import { ADD_LINES_PATH, addedLines, StripeProxy, type FaultMode } from '../helpers/stripe-proxy';
import { openTestDatabase } from '../helpers/tokenmeter-db';

/** Step, the Stripe operation its failure names, and the requests it sends. */
const STEPS: [string, string, (method: string, path: string) => boolean][] = [
  ['create customer', 'customers.create', (m, p) => m === 'POST' && p === '/v1/customers'],
  ['create invoice', 'invoices.create', (m, p) => m === 'POST' && p === '/v1/invoices'],
  ['add invoice lines', 'invoices.addLines', (m, p) => m === 'POST' && ADD_LINES_PATH.test(p)],
  ['finalize invoice', 'invoices.finalizeInvoice', (m, p) => m === 'POST' && /^\/v1\/invoices\/[^/]+\/finalize$/.test(p)],
];
const MODES: FaultMode[] = ['before_503', 'before_drop', 'after_drop'];

/**
 * Every Stripe step of the push fails in turn (before the request reaches Stripe, or after Stripe
 * did the work and the response is lost), for longer than the retries last; the push ends in
 * sync_failed; retry-sync resumes it. Stripe must end up with exactly one customer, one invoice,
 * one add_lines call carrying every line once, and one finalize, and our rows must point at those
 * objects and have every line marked pushed.
 */
describe('Stripe push under faults (stripe-mock behind an idempotency-honouring proxy)', () => {
  let db: Database;
  let proxy: StripeProxy;
  const now = () => new Date('2026-12-02T00:00:00Z');

  beforeAll(() => {
    db = openTestDatabase();
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    proxy = await new StripeProxy().start();
    await readyToCloseNovember(db, [
      aUsageEvent({ account_id: 'acct_f', usage: { input_tokens: 1_234_567, output_tokens: 7_654_321, cache_read_tokens: 1000 } }),
      aUsageEvent({ account_id: 'acct_f', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 50_000 } }),
    ]);
  });
  afterEach(() => proxy.stop());

  const expectExactlyOnce = async (invoiceId: string) => {
    const { rows: [inv] } = await db.pool.query(`SELECT status, stripe_invoice_id, stripe_customer_id, hosted_invoice_url FROM invoices WHERE id = $1`, [invoiceId]);
    const { rows: lines } = await db.pool.query(`SELECT line_key, amount_minor::text, stripe_pushed_at FROM invoice_lines WHERE invoice_id = $1 ORDER BY id`, [invoiceId]);
    expect(inv.status).toBe('finalized');
    // stripe-mock validates every request against Stripe's OpenAPI spec: none was refused.
    expect(proxy.ledger.filter((e) => e.status >= 300)).toEqual([]);
    expect(lines).toHaveLength(5);
    expect(proxy.count('POST', '/v1/customers')).toBe(1);
    expect(proxy.count('POST', '/v1/invoices')).toBe(1);
    // Five lines: one add_lines call (up to 100 lines each), no invoice item created one by one.
    expect(proxy.count('POST', ADD_LINES_PATH)).toBe(1);
    expect(proxy.count('POST', '/v1/invoiceitems')).toBe(0);
    expect(proxy.count('POST', /\/finalize$/)).toBe(1);
    const created = (key: string) => proxy.ledger.find((e) => e.idempotencyKey === key && e.status < 300)?.responseId;
    expect(inv.stripe_customer_id).toBe(created(idempotencyKeys.customer('acct_f')));
    expect(inv.stripe_invoice_id).toBe(created(idempotencyKeys.invoice(invoiceId)));
    for (const line of lines) expect(line.stripe_pushed_at).toBeInstanceOf(Date);
    // The call went to that invoice (and no other), under the key of exactly these lines, and
    // carried each line once with our integer cents.
    const [sent] = proxy.ledger.filter((x) => x.method === 'POST' && ADD_LINES_PATH.test(x.path) && x.status < 300);
    expect(sent.path).toBe(`/v1/invoices/${inv.stripe_invoice_id}/add_lines`);
    expect(sent.idempotencyKey).toBe(idempotencyKeys.lines(invoiceId, lines.map((l) => l.line_key)));
    expect(addedLines(sent.params).map((l) => [l.metadata.tokenmeter_invoice_id, l.metadata.line_key, l.amount])).toEqual(
      lines.map((l) => [invoiceId, l.line_key, l.amount_minor]),
    );
  };

  for (const [step, operation, match] of STEPS) {
    for (const mode of MODES) {
      it(`${step}, ${mode}: fails to sync_failed, then retry-sync yields exactly one invoice with the right items`, async () => {
        const svc = invoicingFor(db, proxy.url, now);
        proxy.inject({ match, mode, times: Infinity });
        const summary = await svc.closer.close('2026-11');
        expect(summary.syncFailed).toBe(1);
        const invoiceId = summary.results[0].invoiceId!;
        const { rows: [failed] } = await db.pool.query(`SELECT status, sync_error FROM invoices WHERE id = $1`, [invoiceId]);
        expect(failed.status).toBe('sync_failed');
        // The reason names the step that failed, e.g. "invoices.addLines: ...".
        expect(failed.sync_error.startsWith(`${operation}: `)).toBe(true);

        proxy.clearFaults();
        // A fresh process (new client, nothing in memory) resumes from what was stored.
        const outcome = await invoicingFor(db, proxy.url, now).sync.retrySync(invoiceId, null);
        expect(outcome.status).toBe('finalized');
        await expectExactlyOnce(invoiceId);
      });
    }
  }

  it('rides out rate limiting and dropped responses with retries, without duplicates', async () => {
    const svc = invoicingFor(db, proxy.url, now);
    proxy.inject({ match: 'POST /v1/invoices', mode: 'rate_limit', times: 2 });
    proxy.inject({ match: (m, p) => m === 'POST' && ADD_LINES_PATH.test(p), mode: 'after_drop', times: 2 });
    const summary = await svc.closer.close('2026-11');
    expect(summary.finalized).toBe(1);
    await expectExactlyOnce(summary.results[0].invoiceId!);
    expect(proxy.replays).toBeGreaterThanOrEqual(2);
  });

  it('resumes a push interrupted by a crash (status finalizing) on the next close run', async () => {
    const svc = invoicingFor(db, proxy.url, now);
    await svc.closer.close('2026-11', { finalize: false });
    const { rows: [inv] } = await db.pool.query(`SELECT id FROM invoices`);
    // The crashed run had frozen the invoice and created the Stripe invoice, then died.
    await db.pool.query(`UPDATE invoices SET status = 'finalizing' WHERE id = $1`, [inv.id]);
    proxy.inject({ match: (m, p) => m === 'POST' && ADD_LINES_PATH.test(p), mode: 'after_drop', times: Infinity });
    await svc.sync.push(inv.id);
    proxy.clearFaults();
    await db.pool.query(`UPDATE invoices SET status = 'finalizing' WHERE id = $1`, [inv.id]);
    const rerun = await invoicingFor(db, proxy.url, now).closer.close('2026-11');
    expect(rerun.results[0]).toMatchObject({ outcome: 'resumed', status: 'finalized' });
    await expectExactlyOnce(inv.id);
  });
});
