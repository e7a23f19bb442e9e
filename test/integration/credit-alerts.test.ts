import type { Kafka, Producer } from 'kafkajs';
import { Webhook } from 'standardwebhooks';
import { createLogger } from '@tokenmeter/config';
import { BudgetAlertsRepository, CreditAlertsRepository, WebhooksRepository } from '@tokenmeter/db';
import { UsageIngestor } from '@tokenmeter/ingest';
import { AlertsDispatcher, CreditAlertsWatcher, CreditsService, newWebhookSecret, WebhookDeliverer, type NewCreditGrantInput } from '@tokenmeter/limits';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { startReceiver } from '../helpers/alerts';
import { createTopics, readTopic, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { asMessages, ingestorOn } from '../helpers/ingest';
import { creditsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';

jest.setTimeout(120_000);

const log = createLogger('test', 'silent');
// Every default deepseek-r1 event costs exactly $0.00175997: a grant of 100 events' worth.
const HUNDRED_EVENTS = '0.175997';

/**
 * credits_low / credits_exhausted, derived by the watcher from real ingested usage (UsageIngestor,
 * real Postgres, LISTEN/NOTIFY), published by the AlertsDispatcher to the real broker and delivered
 * signed to a local receiver.
 */
describe('credit alerts: exactly once per (account, funding, kind, threshold), seen as soon as the usage is stored', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let credits: CreditsService;
  let alerts: CreditAlertsRepository;
  const watchers: CreditAlertsWatcher[] = [];
  let clockMs: number;
  // Events one ms apart, in the past, so every one is new.
  const ev = (over: Partial<GatewayEvent> = {}) => aUsageEvent({ account_id: 'acct_c', occurred_at: new Date(clockMs++).toISOString(), ...over });
  const events = (n: number) => Array.from({ length: n }, () => ev());
  const grant = (over: Partial<NewCreditGrantInput> = {}): NewCreditGrantInput => ({
    accountId: 'acct_c',
    amountUsd: HUNDRED_EVENTS,
    category: 'paid',
    effectiveAt: new Date(Date.now() - 86_400_000),
    expiresAt: null,
    priority: 0,
    models: [],
    idempotencyKey: 'k1',
    ...over,
  });
  const rows = async () =>
    (
      await db.pool.query(
        `SELECT kind, threshold_pct::text AS pct, funding_grant_id AS funding, available_usd::text AS available, funded_usd::text AS funded
           FROM credit_alerts ORDER BY id`,
      )
    ).rows.map((r) => `${r.kind}:${Number(r.pct)} ${r.funding} ${r.available}/${r.funded}`);
  const watcher = async (start = true) => {
    const w = new CreditAlertsWatcher(credits, alerts, { databaseUrl: TEST_DATABASE_URL, thresholdsPct: ['20', '5'] }, log);
    watchers.push(w);
    if (start) await w.start();
    return w;
  };
  /** Runs `write`, waits until every started watcher heard its notification and finished checking. */
  const settled = async (ws: CreditAlertsWatcher[], write: () => Promise<unknown>) => {
    const before = ws.map((w) => w.stats.notifications);
    await write();
    await waitFor('the watchers heard it', async () => ws.every((w, i) => w.stats.notifications > before[i]), 20_000, 20);
    await Promise.all(ws.map((w) => w.idle()));
  };

  beforeEach(async () => {
    clockMs = Date.now() - 3_600_000;
    ingestor = ingestorOn(db);
    credits = creditsServiceOn(db);
    alerts = new CreditAlertsRepository(db.pool);
    await db.pool.query(`INSERT INTO accounts (id) VALUES ('acct_c')`);
  });
  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.stop()));
  });

  it('two watchers, usage down through 20%, 5% and 0, redeliveries and rechecks: one alert each; a top-up re-arms them', async () => {
    const [w1, w2] = [await watcher(), await watcher()];
    const both = [w1, w2];
    const g1 = await settled(both, () => credits.createGrant(grant(), actor)).then(async () => (await credits.balances('acct_c')).grants[0].grant.id);
    expect(await rows()).toEqual([]);

    const first79 = events(79);
    await settled(both, () => ingestor.ingest(asMessages(first79), 'http'));
    expect(await rows()).toEqual([]); // 21 events' worth left: above 20%

    await settled(both, () => ingestor.ingest(asMessages([ev()]), 'http'));
    expect(await rows()).toEqual([`low:20 ${g1} 0.0351994/${HUNDRED_EVENTS}`]); // exactly 20 events' worth: at the threshold

    // The same events again (the ingest stores nothing and notifies nothing), and every watcher checking again, at once.
    await ingestor.ingest(asMessages(first79), 'http');
    expect(await Promise.all([w1.check('acct_c'), w2.check('acct_c'), w1.check('acct_c')])).toEqual([[], [], []]);

    await settled(both, () => ingestor.ingest(asMessages(events(14)), 'http'));
    expect(await rows()).toHaveLength(1); // 6 left: above 5%
    await settled(both, () => ingestor.ingest(asMessages(events(1)), 'http'));
    await settled(both, () => ingestor.ingest(asMessages(events(4)), 'http'));
    expect((await rows()).slice(1)).toEqual([`low:5 ${g1} 0.00879985/${HUNDRED_EVENTS}`]);
    await settled(both, () => ingestor.ingest(asMessages(events(1)), 'http'));
    await settled(both, () => ingestor.ingest(asMessages(events(2)), 'http')); // beyond the credits: uncovered, nothing new
    expect((await rows()).slice(2)).toEqual([`exhausted:0 ${g1} 0/${HUNDRED_EVENTS}`]);
    expect(await Promise.all([w1.check('acct_c'), w2.check('acct_c')])).toEqual([[], []]);

    // A top-up: a new funding, its own baseline (it also pays for the 2 uncovered events), every alert armed again.
    const g2 = await settled(both, () => credits.createGrant(grant({ idempotencyKey: 'k2' }), actor)).then(
      async () => (await credits.balances('acct_c')).grants.find((g) => g.grant.id !== g1)!.grant.id,
    );
    const funded2 = (await db.pool.query('SELECT funded_usd::text AS f FROM credit_alert_fundings WHERE funding_grant_id = $1', [g2])).rows[0].f;
    expect(funded2).toBe('0.17247706'); // 98 events' worth
    await settled(both, () => ingestor.ingest(asMessages(events(78)), 'http'));
    expect(await rows()).toHaveLength(3); // 20 events' worth left of 98: above 19.6
    await settled(both, () => ingestor.ingest(asMessages(events(1)), 'http'));
    expect((await rows()).slice(3)).toEqual([`low:20 ${g2} 0.03343943/0.17247706`]);
    expect(w1.stats.alerts + w2.stats.alerts).toBe(4); // each alert recorded by exactly one of them
  });

  it('watchers that were not listening catch up after LISTEN, and concurrent checks of one crossing record it once', async () => {
    const w1 = await watcher(false);
    const w2 = await watcher(false);
    await credits.createGrant(grant(), actor);
    await w1.check('acct_c'); // the baseline, right after the funding
    await ingestor.ingest(asMessages(events(96)), 'http');
    const ids = await Promise.all([w1.check('acct_c'), w2.check('acct_c'), w2.check('acct_c'), w1.check('acct_c')]);
    expect(ids.flat()).toHaveLength(2);
    expect((await rows()).map((r) => r.split(' ')[0])).toEqual(['low:20', 'low:5']);
    // Exhausted while nobody listened: the first LISTEN looks at every account with a live grant.
    await ingestor.ingest(asMessages(events(4)), 'http');
    await w1.start();
    await waitFor('exhausted seen after LISTEN', async () => (await rows()).length === 3, 20_000, 50);
    await w1.idle();
    expect((await rows()).map((r) => r.split(' ')[0])).toEqual(['low:20', 'low:5', 'exhausted:0']);
  });

  describe('published', () => {
    let kafka: Kafka;
    let producer: Producer;
    beforeAll(async () => {
      kafka = testKafka('credit-alerts-test');
      producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
    });
    afterAll(() => producer.disconnect());

    it('goes to the alerts topic and, signed, to the endpoints subscribed to credits.low or "*"', async () => {
      const topic = uniqueName('tokenmeter.alerts.test');
      await createTopics(kafka, [topic], 3);
      const receiver = await startReceiver();
      const webhooks = new WebhooksRepository(db.pool);
      const secret = newWebhookSecret();
      await webhooks.createEndpoint({ id: 'wh_low', url: `${receiver.url}/low`, events: ['credits.low'], secret });
      await webhooks.createEndpoint({ id: 'wh_all', url: `${receiver.url}/all`, events: ['*'], secret: newWebhookSecret() });
      await webhooks.createEndpoint({ id: 'wh_exhausted', url: `${receiver.url}/exhausted`, events: ['credits.exhausted'], secret: newWebhookSecret() });
      await webhooks.createEndpoint({ id: 'wh_budget', url: `${receiver.url}/budget`, events: ['budget.threshold_crossed'], secret: newWebhookSecret() });
      const deliverer = new WebhookDeliverer(webhooks, { concurrency: 2, timeoutMs: 2000, retryScheduleMs: [50, 50], pollIntervalMs: 25 }, log);
      const dispatcher = new AlertsDispatcher(
        db.pool,
        new BudgetAlertsRepository(db.pool),
        alerts,
        webhooks,
        producer,
        { databaseUrl: TEST_DATABASE_URL, topic, batchSize: 10, pollIntervalMs: 60_000, onDeliveriesEnqueued: () => deliverer.wake() },
        log,
      );
      const w = await watcher();
      deliverer.start();
      await dispatcher.start();
      try {
        await settled([w], () => credits.createGrant(grant(), actor));
        await settled([w], () => ingestor.ingest(asMessages(events(85)), 'http'));
        const [id] = (await db.pool.query('SELECT id::text FROM credit_alerts')).rows.map((r) => r.id);
        const record = (await readTopic(kafka, topic, 1))[0];
        expect(record.key).toBe('acct_c');
        expect(record.headers).toMatchObject({ 'message-id': `credit_alert_${id}`, 'event-type': 'credits.low' });
        const g = (await credits.balances('acct_c')).grants[0].grant.id;
        expect(JSON.parse(record.value)).toEqual({
          type: 'credits.low',
          timestamp: expect.any(String),
          data: { alert_id: id, account_id: 'acct_c', threshold_pct: '20', available_usd: '0.02639955', funded_usd: HUNDRED_EVENTS, funding_grant_id: g },
        });
        const got = await waitFor('the delivery', async () => receiver.requests.find((r) => r.url.endsWith('/low')), 20_000, 50);
        expect(got.headers['webhook-id']).toBe(`credit_alert_${id}`);
        expect(got.body).toBe(record.value); // the same bytes
        expect(new Webhook(secret).verify(got.body, got.headers as Record<string, string>)).toMatchObject({ type: 'credits.low', data: { alert_id: id } });
        await waitFor('delivered', async () => (await db.pool.query(`SELECT 1 FROM webhook_deliveries WHERE status = 'delivered'`)).rowCount === 2, 10_000, 50);
        expect(receiver.requests.filter((r) => r.url.endsWith('/budget') || r.url.endsWith('/exhausted'))).toEqual([]);
        expect((await db.pool.query('SELECT endpoint_id, event_type, message_id FROM webhook_deliveries ORDER BY endpoint_id')).rows).toEqual([
          { endpoint_id: 'wh_all', event_type: 'credits.low', message_id: `credit_alert_${id}` },
          { endpoint_id: 'wh_low', event_type: 'credits.low', message_id: `credit_alert_${id}` },
        ]);
        expect((await db.pool.query('SELECT published_at IS NOT NULL AS p FROM credit_alerts')).rows).toEqual([{ p: true }]);
      } finally {
        await dispatcher.stop();
        await deliverer.stop();
        await receiver.close();
      }
    });
  });
});
