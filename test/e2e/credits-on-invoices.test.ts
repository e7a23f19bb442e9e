import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import Stripe from 'stripe';
import { CreditGrantsRepository, CreditLedgerRepository, Transactor, type Database } from '@tokenmeter/db';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { aUsageEvent } from '../factories/usage-events';
import { client, insertApiKey, startApi } from '../helpers/api-app';
import { useEnv } from '../helpers/env';
import { WEBHOOK_SECRET } from '../helpers/invoicing';
import { createTopics, publishUsage, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';
import { ingestorOn } from '../helpers/ingest';

jest.setTimeout(120_000);

/**
 * Credits end to end with real parts: usage published to the real broker and stored by the real
 * consumer, a paid top-up sold through the API on stripe-mock and activated by a signed webhook,
 * the monthly close through the API (completeness from the broker's high watermarks), the account
 * reading its invoice with its credit lines, reconciliation, and a void that gives the credits back.
 */
describe('credits consumed by usage from the broker, on the invoice, over HTTP', () => {
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let kafka: Kafka;
  let consumer: UsageConsumer;
  const signer = new Stripe('sk_test_signer');
  const topic = uniqueName('usage.credits');
  useEnv({ KAFKA_USAGE_TOPIC: topic });

  beforeAll(async () => {
    db = openTestDatabase();
    kafka = testKafka();
    await resetDatabase(db);
    await seedPriceBook(db);
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    ({ app, base } = await startApi('warn', { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, KAFKA_USAGE_TOPIC: topic }));
  });
  afterAll(async () => {
    await consumer?.stop().catch(() => undefined);
    await app.close();
    await db.close();
  });

  it('bills usage net of a promotional grant and a paid top-up, reconciles, and a void returns the credits', async () => {
    const read = client(base);
    const http = {
      get: read.get,
      post: async (path: string, key: string, body?: unknown) => {
        const res = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: await res.json() };
      },
    };
    const admin = await insertApiKey(db, 'admin');
    const mine = await insertApiKey(db, 'account', 'acct_cr');
    await db.pool.query(`INSERT INTO accounts (id, name) VALUES ('acct_cr', 'Credits Ltd')`);

    // A promotional grant, as h/c1's admin route writes it (grant + its ledger entry in one unit).
    await new Transactor(db.pool).run(async (q) => {
      await new CreditGrantsRepository(db.pool).createGrant(
        {
          id: 'grt_promo_e2e',
          accountId: 'acct_cr',
          amountUsd: '3.00',
          category: 'promotional',
          priority: 0,
          effectiveAt: new Date('2026-11-01T00:00:00Z'),
          expiresAt: null,
          models: [],
          idempotencyKey: 'promo-e2e',
          requestHash: 'test',
          status: 'active',
        },
        q,
      );
      await new CreditLedgerRepository(db.pool).append([{ accountId: 'acct_cr', grantId: 'grt_promo_e2e', kind: 'grant', amountUsd: '3.00' }], q);
    });

    // A paid top-up, sold on its own Stripe invoice (stripe-mock), pending until paid.
    const body = { amount_usd: '10.00', idempotency_key: 'topup-e2e', effective_at: '2026-11-01T00:00:00Z' };
    const topUp = await http.post('/admin/accounts/acct_cr/credit-top-ups', admin, body);
    expect([topUp.status, topUp.replayed]).toEqual([201, null]);
    expect(topUp.body).toMatchObject({ status: 'pending_payment', amount_usd: '10.00', category: 'paid', stripe_invoice_id: expect.stringMatching(/^in_/) });
    const replay = await http.post('/admin/accounts/acct_cr/credit-top-ups', admin, body);
    expect([replay.status, replay.replayed, replay.body.grant_id]).toEqual([201, 'true', topUp.body.grant_id]);
    expect((await http.post('/admin/accounts/acct_cr/credit-top-ups', admin, { ...body, amount_usd: '11.00' })).status).toBe(409);
    expect((await http.post('/admin/accounts/acct_cr/credit-top-ups', admin, { ...body, amount_usd: '10.001' })).status).toBe(400);
    expect((await http.post('/admin/accounts/acct_cr/credit-top-ups', mine, body)).status).toBe(403);
    const paid = JSON.stringify({ id: 'evt_topup_paid', object: 'event', type: 'invoice.paid', data: { object: { id: topUp.body.stripe_invoice_id, object: 'invoice' } } });
    const deliver = () =>
      fetch(`${base}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signer.webhooks.generateTestHeaderString({ payload: paid, secret: WEBHOOK_SECRET }) },
        body: paid,
      }).then(async (r) => [r.status, (await r.json()).outcome]);
    expect(await deliver()).toEqual([200, 'applied']);
    expect(await deliver()).toEqual([200, 'duplicate']);

    // November usage, published to the broker and stored by the real consumer.
    const events = [
      aUsageEvent({ account_id: 'acct_cr', occurred_at: '2026-11-03T10:00:00.000Z', model: 'gpt-4o', usage: { input_tokens: 1_000_000, output_tokens: 100_000 } }),
      aUsageEvent({ account_id: 'acct_cr', occurred_at: '2026-11-18T10:00:00.000Z', model: 'claude-sonnet-4', usage: { input_tokens: 1_000_000, output_tokens: 200_000 } }),
      aUsageEvent({ account_id: 'acct_cr', occurred_at: '2026-11-28T10:00:00.000Z', usage: { input_tokens: 2_000_000, output_tokens: 1_000_000 } }),
    ];
    await publishUsage(topic, events);
    const ingestor = ingestorOn(db);
    consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 100 }, pino({ level: 'silent' }));
    await consumer.start();
    await waitFor('the events stored', async () => (await db.pool.query(`SELECT count(*)::int AS n FROM usage_events WHERE account_id = 'acct_cr'`)).rows[0].n === 3);

    // The close: complete because every partition is caught up with the broker's high watermark.
    const closed = await http.post('/admin/invoices/close', admin, { period: '2026-11' });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ created: 1, finalized: 1, sync_failed: 0 });
    const id = closed.body.invoices[0].invoice_id;
    const invoice = (await http.get(`/v1/invoices/${id}`, mine)).body;
    // $2.50 + $1.00 + $3.00 + $3.00 + $1.1428 + $2.2857 = $12.9285: promo $3.00 first, then the top-up's $9.9285.
    expect(invoice.lines.filter((l: { token_type: string }) => l.token_type === 'credit')).toEqual([
      {
        model: '',
        token_type: 'credit',
        service_period: '2026-11',
        quantity: 0,
        unit_price_per_mtok: '0',
        amount_exact_usd: '-3',
        amount_minor: -300,
        description: 'Promotional credit grt_promo_e2e, Nov 2026',
      },
      {
        model: '',
        token_type: 'credit',
        service_period: '2026-11',
        quantity: 0,
        unit_price_per_mtok: '0',
        amount_exact_usd: '-9.9285',
        amount_minor: -993,
        description: `Prepaid credit ${topUp.body.grant_id}, Nov 2026`,
      },
    ]);
    const usageCents = invoice.lines.filter((l: { token_type: string }) => l.token_type !== 'credit').reduce((s: number, l: { amount_minor: number }) => s + l.amount_minor, 0);
    expect(usageCents).toBe(1293);
    expect(invoice).toMatchObject({ status: 'finalized', total_minor: 0, total_usd: '0.00' });

    const balances = async () =>
      Object.fromEntries(
        (await db.pool.query(`SELECT grant_id, trim_scale(sum(amount_usd))::text AS b FROM credit_ledger_entries GROUP BY grant_id`)).rows.map((r) => [r.grant_id, r.b]),
      );
    expect(await balances()).toEqual({ grt_promo_e2e: '0', [topUp.body.grant_id]: '0.07' });
    const rec = await http.get('/admin/reconciliation?period=2026-11&stripe=false', admin);
    expect(rec.body.accounts_detail).toEqual([
      expect.objectContaining({ account_id: 'acct_cr', invoice_total_minor: '0', invoice_credits_minor: '-1293', ledger_credits_usd: '-12.93', mismatches: [] }),
    ]);

    // Void (in stripe-mock too): the credits go back to their grants.
    expect((await http.post(`/admin/invoices/${id}/void`, admin)).body.status).toBe('void');
    expect(await balances()).toEqual({ grt_promo_e2e: '3', [topUp.body.grant_id]: '10' });
    const after = await http.get('/admin/reconciliation?period=2026-11&stripe=false', admin);
    expect(after.body.accounts_detail[0]).toMatchObject({ invoice_status: 'void', ledger_credits_usd: '0', mismatches: [] });
  });
});
