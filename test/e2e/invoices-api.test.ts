import type { NestExpressApplication } from '@nestjs/platform-express';
import Stripe from 'stripe';
import { insertApiKey, startApi } from '../helpers/api-app';
import { aUsageEvent } from '../factories/usage-events';
import { useEnv } from '../helpers/env';
import { ingest, setIngestProgress, WEBHOOK_SECRET } from '../helpers/invoicing';
import { uniqueName } from '../helpers/kafka';
import { useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(60_000);

describe('invoices over HTTP: admin close, account reads, Stripe webhooks', () => {
  let app: NestExpressApplication;
  let base: string;
  const db = useTestDatabase();
  let admin: string;
  let keyA: string;
  let keyB: string;
  // Only used to sign webhook payloads the way Stripe does.
  const signer = new Stripe('sk_test_signer');

  const call = async (method: string, path: string, key: string | null, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const webhook = (event: object, secret = WEBHOOK_SECRET) => {
    const payload = JSON.stringify(event);
    return call('POST', '/webhooks/stripe', null, payload, {
      'stripe-signature': signer.webhooks.generateTestHeaderString({ payload, secret }),
    });
  };

  useEnv({
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    // A usage topic the broker does not have: its high-watermark probe finds nothing, so only the
    // ingest_progress rows these tests write decide completeness (whatever else is on the broker).
    KAFKA_USAGE_TOPIC: uniqueName('usage.invoices-api'),
  });
  beforeAll(async () => {
    ({ app, base } = await startApi());
  });
  afterAll(() => app.close());
  beforeEach(async () => {
    await setIngestProgress(db, new Date('2026-11-01T01:00:00Z'));
    await ingest(
      db,
      [
        aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-15T10:00:00Z', usage: { input_tokens: 3_456_789, output_tokens: 12_345_678, cache_read_tokens: 9_876_543 } }),
        aUsageEvent({ account_id: 'acct_b', occurred_at: '2026-10-20T10:00:00Z', usage: { input_tokens: 1_000_000, output_tokens: 0 } }),
      ],
      new Date('2026-11-15T00:00:00Z'),
    );
    admin = await insertApiKey(db, 'admin');
    keyA = await insertApiKey(db, 'account', 'acct_a');
    keyB = await insertApiKey(db, 'account', 'acct_b');
  });

  it('closes a month through Stripe (stripe-mock), then shows each account only its own invoice', async () => {
    const closed = await call('POST', '/admin/invoices/close', admin, { period: '2026-10' });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ period: '2026-10', accounts: 2, created: 2, finalized: 2, sync_failed: 0 });
    expect((await call('POST', '/admin/invoices/close', keyA, { period: '2026-10' })).status).toBe(403);

    const list = await call('GET', '/v1/invoices', keyA);
    expect(list.body.data.map((i: { account_id: string }) => i.account_id)).toEqual(['acct_a']);
    const id = list.body.data[0].id;
    const one = await call('GET', `/v1/invoices/${id}`, keyA);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id,
      account_id: 'acct_a',
      period: '2026-10',
      status: 'finalized',
      currency: 'usd',
      total_minor: 3246,
      total_usd: '32.46',
      stripe_invoice_id: expect.stringMatching(/^in_/),
    });
    expect(one.body.lines[1]).toEqual({
      model: 'deepseek-r1',
      token_type: 'output',
      service_period: '2026-10',
      quantity: 12345678,
      unit_price_per_mtok: '2.2857',
      amount_exact_usd: '28.2185162046',
      amount_minor: 2822,
      description: 'deepseek-r1 output tokens, 12,345,678 x $2.2857 per 1M, Oct 2026',
    });
    expect(one.body).not.toHaveProperty('sync_error');
    // Another account's invoice is indistinguishable from a missing one.
    expect((await call('GET', `/v1/invoices/${id}`, keyB)).status).toBe(404);
    expect((await call('GET', '/v1/invoices/inv_nope', keyB)).status).toBe(404);
    expect((await call('GET', `/v1/invoices/${id}`, admin)).body.sync_error).toBeNull();

    const rec = await call('GET', '/admin/reconciliation?period=2026-10', admin);
    expect(rec.status).toBe(200);
    const detail: { raw_total_usd: string; rollup_total_usd: string }[] = rec.body.accounts_detail;
    expect(detail.map((d) => d.raw_total_usd === d.rollup_total_usd)).toEqual([true, true]);
    const { rows } = await db.pool.query(`SELECT action FROM audit_log ORDER BY id`);
    expect(rows.map((r) => r.action)).toEqual(['invoices.close']);
  });

  it('answers 409 while ingestion is incomplete, and lets an admin force, void and retry', async () => {
    await setIngestProgress(db, new Date('2026-10-31T00:00:00Z'));
    const refused = await call('POST', '/admin/invoices/close', admin, { period: '2026-10' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/not complete/);
    const bad = await call('POST', '/admin/invoices/close', admin, { period: '2026-13' });
    expect(bad.status).toBe(400);
    const drafts = await call('POST', '/admin/invoices/close', admin, { period: '2026-10', force: true, finalize: false });
    expect(drafts.body).toMatchObject({ forced: true, created: 2, finalized: 0 });
    const [a, b] = drafts.body.invoices.map((i: { invoice_id: string }) => i.invoice_id);
    expect((await call('POST', `/admin/invoices/${a}/retry-sync`, admin)).status).toBe(409); // a draft is finalized, not retried
    const fin = await call('POST', `/admin/invoices/${a}/finalize`, admin);
    expect(fin.body).toMatchObject({ status: 'finalized', hosted_invoice_url: null });
    const voided = await call('POST', `/admin/invoices/${b}/void`, admin);
    expect(voided.body.status).toBe('void');
    const { rows } = await db.pool.query(`SELECT action FROM audit_log ORDER BY id`);
    expect(rows.map((r) => r.action)).toEqual(['invoices.close.forced', 'invoices.close', 'invoices.finalize', 'invoices.void']);
  });

  it('verifies webhook signatures, applies each event once, and ignores unknown types', async () => {
    const closed = await call('POST', '/admin/invoices/close', admin, { period: '2026-10', account_id: 'acct_a' });
    const id = closed.body.invoices[0].invoice_id;
    const { stripe_invoice_id } = (await call('GET', `/v1/invoices/${id}`, admin)).body;
    const paid = { id: 'evt_paid_1', object: 'event', type: 'invoice.paid', data: { object: { id: stripe_invoice_id, object: 'invoice' } } };

    expect((await webhook(paid, 'whsec_wrong')).status).toBe(400);
    expect((await call('POST', '/webhooks/stripe', null, JSON.stringify(paid), { 'stripe-signature': 't=1,v1=abc' })).status).toBe(400);
    expect((await call('POST', '/webhooks/stripe', null, JSON.stringify(paid))).status).toBe(400);
    expect((await call('GET', `/v1/invoices/${id}`, admin)).body.status).toBe('finalized');

    expect(await webhook(paid)).toEqual({ status: 200, body: { received: true, outcome: 'applied' } });
    expect(await webhook(paid)).toEqual({ status: 200, body: { received: true, outcome: 'duplicate' } });
    expect((await call('GET', `/v1/invoices/${id}`, keyA)).body).toMatchObject({ status: 'paid', paid_at: expect.any(String) });
    // A void after payment is not a transition we make.
    const voided = { id: 'evt_void_1', object: 'event', type: 'invoice.voided', data: { object: { id: stripe_invoice_id, object: 'invoice' } } };
    expect((await webhook(voided)).body.outcome).toBe('ignored');
    expect((await webhook({ id: 'evt_x', object: 'event', type: 'customer.created', data: { object: { id: 'cus_1' } } })).body).toEqual({ received: true, outcome: 'ignored' });
    const { rows } = await db.pool.query(`SELECT id FROM stripe_webhook_events ORDER BY id`);
    expect(rows.map((r) => r.id)).toEqual(['evt_paid_1', 'evt_void_1', 'evt_x']);
  });

  it('moves a finalized invoice to uncollectible and then void from webhooks', async () => {
    const closed = await call('POST', '/admin/invoices/close', admin, { period: '2026-10', account_id: 'acct_b' });
    const id = closed.body.invoices[0].invoice_id;
    const { stripe_invoice_id } = (await call('GET', `/v1/invoices/${id}`, admin)).body;
    const ev = (n: string, type: string) => ({ id: n, object: 'event', type, data: { object: { id: stripe_invoice_id, object: 'invoice' } } });
    expect((await webhook(ev('evt_u', 'invoice.marked_uncollectible'))).body.outcome).toBe('applied');
    expect((await call('GET', `/v1/invoices/${id}`, keyB)).body.status).toBe('uncollectible');
    expect((await webhook(ev('evt_v', 'invoice.voided'))).body.outcome).toBe('applied');
    expect((await call('GET', `/v1/invoices/${id}`, keyB)).body.status).toBe('void');
  });
});
