import { ConflictError } from '@tokenmeter/billing';
import { loadConfig } from '@tokenmeter/config';
import { SdkStripeGateway, type StripeGateway } from '@tokenmeter/stripe';
import { aUsageEvent } from '../factories/usage-events';
import { FakeStripe } from '../helpers/fake-stripe';
import { ingest, invoicingFor, setIngestProgress, WEBHOOK_SECRET } from '../helpers/invoicing';
import { useTestDatabase } from '../helpers/tokenmeter-db';

/**
 * A paid top-up sold as its own Stripe invoice, against real Postgres and the in-memory Stripe
 * (which stores what it creates, replays keys and loses answers on demand); webhooks are signed
 * and verified by the real SDK gateway.
 */
describe('a paid top-up on its own Stripe invoice', () => {
  const db = useTestDatabase();
  let fake: FakeStripe;
  let gateway: StripeGateway;
  const signer = new SdkStripeGateway({ ...loadConfig().stripe, webhookSecret: WEBHOOK_SECRET });
  const now = () => new Date('2026-12-02T00:00:00Z');
  const svc = () => invoicingFor(db, gateway, now);
  const actor = { keyId: null, requestId: 'req_test' };
  const request = { amountUsd: '25.00', idempotencyKey: 'topup-1', effectiveAt: new Date('2026-11-01T00:00:00Z') };
  let eventSeq = 0;
  const deliver = (type: string, stripeInvoiceId: string, eventId = `evt_topup_${++eventSeq}`) => {
    const payload = JSON.stringify({ id: eventId, object: 'event', type, data: { object: { id: stripeInvoiceId, object: 'invoice' } } });
    return svc().webhooks.handle(payload, signer.signWebhookPayload(payload));
  };
  const ledger = async () =>
    (await db.pool.query(`SELECT grant_id, kind, trim_scale(amount_usd)::text AS amount FROM credit_ledger_entries ORDER BY id`)).rows.map((r) => [
      r.grant_id,
      r.kind,
      r.amount,
    ]);
  const grantRow = async (id: string) => (await db.pool.query(`SELECT status, stripe_invoice_id, category FROM credit_grants WHERE id = $1`, [id])).rows[0];

  beforeEach(async () => {
    await db.pool.query(`INSERT INTO accounts (id, name) VALUES ('acct_a', 'A')`);
    fake = new FakeStripe();
    // The fake cannot check signatures: the real gateway does, with the test secret.
    gateway = new Proxy(fake, {
      get(target, prop) {
        if (prop === 'verifyWebhook') return signer.verifyWebhook.bind(signer);
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  });

  it('creates a pending grant and a finalized Stripe invoice with one item; invoice.paid activates it once', async () => {
    const { grant, created, stripeInvoice } = await svc().topUps.create('acct_a', request, actor);
    expect(created).toBe(true);
    expect(await grantRow(grant.id)).toEqual({ status: 'pending_payment', stripe_invoice_id: stripeInvoice.id, category: 'paid' });
    const stripe = fake.objectsOf('acct_a');
    expect(stripe.invoices.map((i) => [i.id, i.status, i.metadata.tokenmeter_grant_id, i.totalMinor])).toEqual([[stripeInvoice.id, 'open', grant.id, 2500n]]);
    expect(stripe.items.map((i) => [i.amountMinor, i.description])).toEqual([[2500n, `Prepaid credit ${grant.id}`]]);
    expect(await ledger()).toEqual([]);
    const { rows: audit } = await db.pool.query(`SELECT action, target_id, request_id FROM audit_log`);
    expect(audit).toEqual([{ action: 'credits.top_up', target_id: grant.id, request_id: 'req_test' }]);

    // The same request again: the same grant and invoice, nothing new in Stripe.
    const again = await svc().topUps.create('acct_a', request, actor);
    expect([again.created, again.grant.id, again.stripeInvoice.id]).toEqual([false, grant.id, stripeInvoice.id]);
    expect(fake.objectsOf('acct_a').items).toHaveLength(1);
    await expect(svc().topUps.create('acct_a', { ...request, amountUsd: '30.00' }, actor)).rejects.toBeInstanceOf(ConflictError);

    // Paid: the grant becomes active with its grant entry; a redelivery and a second event change nothing.
    expect(await deliver('invoice.paid', stripeInvoice.id, 'evt_paid')).toMatchObject({ outcome: 'applied', grantId: grant.id, grantStatus: 'active' });
    expect(await deliver('invoice.paid', stripeInvoice.id, 'evt_paid')).toMatchObject({ outcome: 'duplicate' });
    expect(await deliver('invoice.paid', stripeInvoice.id)).toMatchObject({ outcome: 'ignored' });
    expect(await grantRow(grant.id)).toMatchObject({ status: 'active' });
    expect(await ledger()).toEqual([[grant.id, 'grant', '25']]);

    // And the monthly close draws on it.
    await setIngestProgress(db, new Date('2026-12-01T01:00:00Z'));
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 0 } })]);
    const close = await svc().closer.close('2026-11');
    expect(close.results[0]).toMatchObject({ status: 'finalized', totalMinor: '0' });
    expect(await ledger()).toEqual([
      [grant.id, 'grant', '25'],
      [grant.id, 'consumption', '-2.5'],
    ]);
  });

  it('a crash after Stripe created the item, then the same request again: one invoice, one item, one grant', async () => {
    fake.inject({ operation: 'invoiceItems.create', when: 'after', times: 1 });
    await expect(svc().topUps.create('acct_a', request, actor)).rejects.toThrow(/invoiceItems.create/);
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM credit_grants`)).rows[0].n).toBe(0);
    const { grant, created, stripeInvoice } = await svc().topUps.create('acct_a', request, actor);
    expect(created).toBe(true);
    const stripe = fake.objectsOf('acct_a');
    expect(stripe.invoices.map((i) => [i.id, i.status, i.totalMinor])).toEqual([[stripeInvoice.id, 'open', 2500n]]);
    expect(stripe.items).toHaveLength(1);
    expect(stripe.customers).toHaveLength(1);
    expect(grant.stripeInvoiceId).toBe(stripeInvoice.id);
  });

  it('a crash before the finalize is resumed by the same request; a voided top-up invoice cancels the grant', async () => {
    fake.inject({ operation: 'invoices.finalizeInvoice', when: 'before', times: 1 });
    await expect(svc().topUps.create('acct_a', request, actor)).rejects.toThrow(/finalizeInvoice/);
    const { grant, created, stripeInvoice } = await svc().topUps.create('acct_a', request, actor);
    expect([created, stripeInvoice.status]).toEqual([false, 'open']);
    expect(await deliver('invoice.voided', stripeInvoice.id)).toMatchObject({ outcome: 'applied', grantId: grant.id, grantStatus: 'voided' });
    expect(await deliver('invoice.paid', stripeInvoice.id)).toMatchObject({ outcome: 'ignored' });
    expect(await grantRow(grant.id)).toMatchObject({ status: 'voided' });
    expect(await ledger()).toEqual([]);
  });
});
