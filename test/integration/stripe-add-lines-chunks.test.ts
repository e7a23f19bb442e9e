import type { Database } from '@tokenmeter/db';
import { idempotencyKeys } from '@tokenmeter/invoicing';
import type { StripeGateway } from '@tokenmeter/stripe';
import { aUsageEvent } from '../factories/usage-events';
import { FakeStripe } from '../helpers/fake-stripe';
import { invoicingFor, readyToCloseNovember } from '../helpers/invoicing';
import { ADD_LINES_PATH, addedLines, StripeProxy } from '../helpers/stripe-proxy';
import { openTestDatabase } from '../helpers/tokenmeter-db';

/**
 * The lines step in chunks: an invoice's 5 lines go to Stripe in add_lines calls of 2 lines
 * (2 + 2 + 1), each under the key of the lines it carries, each marked pushed once Stripe took
 * it. A chunk Stripe took whose answer was lost (a crash before it was marked), a chunk retried,
 * and a push resumed mid-way all end with every line on the Stripe invoice exactly once.
 */
describe('pushing invoice lines in add_lines chunks', () => {
  let db: Database;
  const now = () => new Date('2026-12-02T00:00:00Z');

  beforeAll(() => {
    db = openTestDatabase();
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    await readyToCloseNovember(db, [
      aUsageEvent({ account_id: 'acct_k', usage: { input_tokens: 1_234_567, output_tokens: 7_654_321, cache_read_tokens: 1000 } }),
      aUsageEvent({ account_id: 'acct_k', model: 'gpt-4o', usage: { input_tokens: 100_000, output_tokens: 50_000 } }),
    ]);
  });

  const ourLines = async () =>
    (await db.pool.query(`SELECT line_key, amount_minor::text, stripe_pushed_at FROM invoice_lines ORDER BY id`)).rows;
  const ourInvoice = async () => (await db.pool.query(`SELECT id, status, total_minor::text, stripe_invoice_id FROM invoices`)).rows[0];
  /** The chunks the push forms: the lines in id order, 2 at a time. */
  const chunkKeys = async (invoiceId: string) => {
    const keys = (await ourLines()).map((l) => l.line_key as string);
    return [keys.slice(0, 2), keys.slice(2, 4), keys.slice(4)].map((chunk) => idempotencyKeys.lines(invoiceId, chunk));
  };
  const expectEachLineOnceInStripe = async (fake: FakeStripe) => {
    const inv = await ourInvoice();
    const lines = await ourLines();
    expect(inv.status).toBe('finalized');
    expect(lines).toHaveLength(5);
    expect(lines.every((l) => l.stripe_pushed_at instanceof Date)).toBe(true);
    const inStripe = fake.itemsOf(inv.stripe_invoice_id).map((i) => [i.metadata.tokenmeter_invoice_id, i.metadata.line_key, i.amountMinor.toString()]);
    expect(inStripe.sort()).toEqual(lines.map((l) => [inv.id, l.line_key, l.amount_minor]).sort());
    expect(fake.invoices.get(inv.stripe_invoice_id)!.totalMinor!.toString()).toBe(inv.total_minor);
  };
  const addLinesKeys = (fake: FakeStripe) => fake.requests.filter((r) => r.operation === 'invoices.addLines').map((r) => [r.idempotencyKey, r.replayed]);

  it('sends 3 add_lines calls for 5 lines, each under the key of its own lines, and marks them all', async () => {
    const fake = new FakeStripe(2);
    const { results } = await invoicingFor(db, fake, now).closer.close('2026-11');
    expect(results[0].status).toBe('finalized');
    expect(addLinesKeys(fake)).toEqual((await chunkKeys(results[0].invoiceId!)).map((k) => [k, false]));
    expect(fake.calls.filter((c) => c === 'invoiceItems.create')).toEqual([]);
    await expectEachLineOnceInStripe(fake);
  });

  it('a crash after Stripe took the 2nd chunk, before it was marked: the resumed push finds it there and sends only the rest', async () => {
    const fake = new FakeStripe(2);
    const { results } = await invoicingFor(db, fake, now).closer.close('2026-11', { finalize: false });
    const invoiceId = results[0].invoiceId!;
    fake.inject({ operation: 'invoices.addLines', when: 'after', skip: 1, times: 1 });
    await invoicingFor(db, fake, now).sync.push(invoiceId);
    // The process died there (rather than record sync_failed): the invoice is left finalizing.
    await db.pool.query(`UPDATE invoices SET status = 'finalizing', sync_error = NULL WHERE id = $1`, [invoiceId]);
    expect((await ourLines()).map((l) => l.stripe_pushed_at !== null)).toEqual([true, true, false, false, false]);
    expect(fake.itemsOf((await ourInvoice()).stripe_invoice_id)).toHaveLength(4);

    const rerun = await invoicingFor(db, fake, now).closer.close('2026-11');
    expect(rerun.results[0]).toMatchObject({ outcome: 'resumed', status: 'finalized' });
    const [k1, k2, k3] = await chunkKeys(invoiceId);
    // Lines 3-4 were found on the Stripe invoice (by our metadata) and only marked; line 5 went alone.
    expect(fake.calls).toContain('invoices.listLineItems');
    expect(addLinesKeys(fake)).toEqual([
      [k1, false],
      [k2, false],
      [k3, false],
    ]);
    await expectEachLineOnceInStripe(fake);
  });

  it('a retried chunk is the same request: without the lookup, Stripe replays it within its 24 hours and adds nothing twice', async () => {
    const fake = new FakeStripe(2);
    const { results } = await invoicingFor(db, fake, now).closer.close('2026-11', { finalize: false });
    const invoiceId = results[0].invoiceId!;
    fake.inject({ operation: 'invoices.addLines', when: 'after', skip: 1, times: 1 });
    const failed = await invoicingFor(db, fake, now).sync.push(invoiceId);
    expect(failed.error).toMatch(/^invoices\.addLines: /);

    // Resumed with a Stripe whose line list shows nothing: only the key protects the chunk.
    const blind: StripeGateway = new Proxy(fake, {
      get(target, prop) {
        if (prop === 'listInvoiceLines') return async () => [];
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    expect((await invoicingFor(db, blind, now).sync.retrySync(invoiceId, null)).status).toBe('finalized');
    const [k1, k2, k3] = await chunkKeys(invoiceId);
    expect(addLinesKeys(fake)).toEqual([
      [k1, false],
      [k2, false],
      [k2, true],
      [k3, false],
    ]);
    await expectEachLineOnceInStripe(fake);
  });

  it('against stripe-mock: chunks of 2 pass its schema, a dropped answer is retried under the same key, each line reaches Stripe once', async () => {
    const proxy = await new StripeProxy().start();
    try {
      proxy.inject({ match: (m, p) => m === 'POST' && ADD_LINES_PATH.test(p), mode: 'after_drop', times: 1 });
      const { results } = await invoicingFor(db, proxy.url, now, { maxLinesPerCall: 2 }).closer.close('2026-11');
      expect(results[0].status).toBe('finalized');
      const inv = await ourInvoice();
      const lines = await ourLines();
      expect(proxy.ledger.filter((e) => e.status >= 300)).toEqual([]);
      const sent = proxy.ledger.filter((e) => e.method === 'POST' && ADD_LINES_PATH.test(e.path));
      expect(sent.map((e) => [e.path, e.idempotencyKey])).toEqual((await chunkKeys(inv.id)).map((k) => [`/v1/invoices/${inv.stripe_invoice_id}/add_lines`, k]));
      // The dropped first chunk was sent again by the gateway's retry and replayed by its key.
      expect(proxy.replays).toBe(1);
      const added = sent.flatMap((e) => addedLines(e.params));
      expect(added.map((l) => [l.metadata.line_key, l.amount])).toEqual(lines.map((l) => [l.line_key, l.amount_minor]));
      expect(added.reduce((sum, l) => sum + BigInt(l.amount), 0n).toString()).toBe(inv.total_minor);
      expect(lines.every((l) => l.stripe_pushed_at instanceof Date)).toBe(true);
    } finally {
      await proxy.stop();
    }
  });
});
