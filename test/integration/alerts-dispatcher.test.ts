import type { Kafka, Producer } from 'kafkajs';
import { createLogger } from '@tokenmeter/config';
import { BudgetAlertsRepository, CreditAlertsRepository, type Database, WebhooksRepository } from '@tokenmeter/db';
import { AlertsDispatcher, newWebhookSecret } from '@tokenmeter/limits';
import { insertAlert, insertBudget, insertManyAlerts, resetAlertTables } from '../helpers/alerts';
import { createTopics, readTopic, testKafka, uniqueName } from '../helpers/kafka';
import { openTestDatabase, TEST_DATABASE_URL } from '../helpers/tokenmeter-db';

jest.setTimeout(90_000);

const log = createLogger('test', 'silent');

/**
 * The outbox to Kafka and to webhook deliveries, against real Postgres and the real broker:
 * one record per alert, one delivery per subscribed endpoint, with two dispatchers at once, and
 * across a dispatcher that dies between its Kafka send and its commit.
 */
describe('AlertsDispatcher', () => {
  let db: Database;
  let kafka: Kafka;
  let topic: string;
  const producers: Producer[] = [];

  const dispatcher = async (options: { batchSize?: number; beforeCommit?: (ids: string[]) => Promise<void> } = {}) => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    producers.push(producer);
    return new AlertsDispatcher(
      db.pool,
      new BudgetAlertsRepository(db.pool),
      new CreditAlertsRepository(db.pool),
      new WebhooksRepository(db.pool),
      producer,
      { databaseUrl: TEST_DATABASE_URL, topic, batchSize: options.batchSize ?? 100, pollIntervalMs: 60_000, beforeCommit: options.beforeCommit },
      log,
    );
  };

  const endpoint = (id: string, events: string[]) => new WebhooksRepository(db.pool).createEndpoint({ id, url: `http://127.0.0.1:9/${id}`, events, secret: newWebhookSecret() });

  const deliveriesPerEndpoint = async () =>
    Object.fromEntries(
      (await db.pool.query('SELECT endpoint_id, count(*)::int AS n FROM webhook_deliveries GROUP BY endpoint_id ORDER BY endpoint_id')).rows.map((r) => [r.endpoint_id, r.n]),
    );

  beforeAll(async () => {
    db = openTestDatabase();
    kafka = testKafka('alerts-dispatcher-test');
  });
  afterAll(async () => {
    await Promise.all(producers.map((p) => p.disconnect()));
    await db.close();
  });
  beforeEach(async () => {
    await resetAlertTables(db);
    topic = uniqueName('tokenmeter.alerts.test');
    await createTopics(kafka, [topic], 3);
  });

  it('publishes one record per alert and queues one delivery per endpoint subscribed to its type', async () => {
    await insertBudget(db, { id: 'bud_1', accountId: 'acct_a', apiKeyId: 'key_1', model: 'gpt-4o', limitUsd: '100.00', window: 'month', enforce: 'soft' });
    await insertBudget(db, { id: 'bud_2', accountId: 'acct_b', limitUsd: '0.000000000000000000001', window: 'total' });
    const dec = new Date('2026-12-01T00:00:00Z');
    const up80 = await insertAlert(db, { budgetId: 'bud_1', accountId: 'acct_a', windowStart: dec, thresholdPct: '80', spendUsd: '80.0000000000000000000001', limitUsd: '100.00' });
    const down80 = await insertAlert(db, { budgetId: 'bud_1', accountId: 'acct_a', windowStart: dec, thresholdPct: '80', direction: 'down', spendUsd: '79.5', limitUsd: '100.00' });
    const up100 = await insertAlert(db, { budgetId: 'bud_2', accountId: 'acct_b', windowStart: new Date(0), thresholdPct: '12.5', spendUsd: '0.000000000000000000001', limitUsd: '0.000000000000000000001' });
    await endpoint('wh_crossed', ['budget.threshold_crossed']);
    await endpoint('wh_all', ['*']);
    await endpoint('wh_recovered', ['budget.threshold_recovered']);
    await endpoint('wh_deleted', ['*']);
    await db.pool.query("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = 'wh_deleted'");

    const d = await dispatcher();
    expect(await d.drain()).toBe(3);

    const records = await readTopic(kafka, topic, 3);
    expect(records).toHaveLength(3);
    const byId = Object.fromEntries(records.map((r) => [r.headers['message-id'], r]));
    expect(Object.keys(byId).sort()).toEqual([`alert_${up80}`, `alert_${down80}`, `alert_${up100}`].sort());
    const first = byId[`alert_${up80}`];
    expect(first.key).toBe('acct_a');
    expect(first.headers['event-type']).toBe('budget.threshold_crossed');
    const createdAt = (await db.pool.query('SELECT created_at FROM budget_alerts WHERE id = $1', [up80])).rows[0].created_at as Date;
    expect(JSON.parse(first.value)).toEqual({
      type: 'budget.threshold_crossed',
      timestamp: createdAt.toISOString(),
      data: {
        alert_id: up80,
        budget_id: 'bud_1',
        account_id: 'acct_a',
        api_key_id: 'key_1',
        model: 'gpt-4o',
        window: 'month',
        window_start: '2026-12-01T00:00:00.000Z',
        resets_at: '2027-01-01T00:00:00.000Z',
        threshold_pct: '80',
        direction: 'up',
        spend_usd: '80.0000000000000000000001',
        limit_usd: '100',
        enforce: 'soft',
      },
    });
    expect(JSON.parse(byId[`alert_${down80}`].value)).toMatchObject({ type: 'budget.threshold_recovered', data: { direction: 'down', spend_usd: '79.5' } });
    expect(JSON.parse(byId[`alert_${up100}`].value).data).toMatchObject({
      window: 'total',
      window_start: '1970-01-01T00:00:00.000Z',
      resets_at: null,
      threshold_pct: '12.5',
      spend_usd: '0.000000000000000000001',
      api_key_id: null,
      model: null,
    });

    expect(await deliveriesPerEndpoint()).toEqual({ wh_all: 3, wh_crossed: 2, wh_recovered: 1 });
    // The delivery body is the Kafka record's value, byte for byte.
    const bodies = (await db.pool.query("SELECT message_id, body, event_type, status FROM webhook_deliveries WHERE endpoint_id = 'wh_all'")).rows;
    for (const row of bodies) {
      expect(row.body).toBe(byId[row.message_id].value);
      expect(row.status).toBe('pending');
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM budget_alerts WHERE published_at IS NULL')).rows[0].n).toBe(0);

    // Nothing left: a second run publishes nothing.
    expect(await d.drain()).toBe(0);
    expect(await readTopic(kafka, topic, 4, 3000)).toHaveLength(3);
  });

  it('two dispatchers at once publish every alert exactly once between them', async () => {
    await insertBudget(db, { id: 'bud_1', accountId: 'acct_a', limitUsd: '100', window: 'day' });
    const ids = await insertManyAlerts(db, 'bud_1', 'acct_a', 300);
    await endpoint('wh_a', ['*']);
    await endpoint('wh_b', ['budget.threshold_crossed']);
    const [one, two] = [await dispatcher({ batchSize: 10 }), await dispatcher({ batchSize: 10 })];

    const [n1, n2] = await Promise.all([one.drain(), two.drain()]);
    expect(n1 + n2).toBe(300);
    // Both took part (SKIP LOCKED hands each a different batch instead of making one wait).
    expect(Math.min(n1, n2)).toBeGreaterThan(0);

    const records = await readTopic(kafka, topic, 300);
    const messageIds = records.map((r) => r.headers['message-id']);
    expect(messageIds).toHaveLength(300);
    expect(new Set(messageIds).size).toBe(300);
    expect(new Set(messageIds)).toEqual(new Set(ids.map((id) => `alert_${id}`)));
    expect(await deliveriesPerEndpoint()).toEqual({ wh_a: 300, wh_b: 300 });
    expect(await readTopic(kafka, topic, 301, 3000)).toHaveLength(300);
  });

  it('a dispatcher dying between its Kafka send and its commit: the next one sends that batch again, but never queues a second delivery', async () => {
    await insertBudget(db, { id: 'bud_1', accountId: 'acct_a', limitUsd: '100', window: 'day' });
    const ids = await insertManyAlerts(db, 'bud_1', 'acct_a', 30);
    await endpoint('wh_a', ['*']);
    let batches = 0;
    const dying = await dispatcher({
      batchSize: 10,
      beforeCommit: async () => {
        batches += 1;
        if (batches === 2) throw new Error('killed after the send, before the commit');
      },
    });
    await expect(dying.drain()).rejects.toThrow('killed after the send');
    // Batch 1 committed; batch 2 was sent but rolled back.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM budget_alerts WHERE published_at IS NOT NULL')).rows[0].n).toBe(10);

    const restarted = await dispatcher({ batchSize: 10 });
    expect(await restarted.drain()).toBe(20);

    expect((await db.pool.query('SELECT count(*)::int AS n FROM budget_alerts WHERE published_at IS NULL')).rows[0].n).toBe(0);
    expect(await deliveriesPerEndpoint()).toEqual({ wh_a: 30 });
    const distinct = (await db.pool.query('SELECT count(DISTINCT message_id)::int AS n FROM webhook_deliveries')).rows[0].n;
    expect(distinct).toBe(30);

    // Kafka is at least once: the batch sent before the crash is there twice, with the same id and bytes.
    const records = await readTopic(kafka, topic, 40);
    expect(records).toHaveLength(40);
    const byId = new Map<string, string[]>();
    for (const r of records) byId.set(r.headers['message-id'], [...(byId.get(r.headers['message-id']) ?? []), r.value]);
    expect(new Set(byId.keys())).toEqual(new Set(ids.map((id) => `alert_${id}`)));
    const twice = [...byId.entries()].filter(([, values]) => values.length === 2);
    expect(twice.map(([id]) => id).sort()).toEqual(ids.slice(10, 20).map((id) => `alert_${id}`).sort());
    for (const [, [a, b]] of twice) expect(a).toBe(b);
  });

  it('wakes on NOTIFY tokenmeter_alerts without waiting for its poll interval', async () => {
    await insertBudget(db, { id: 'bud_1', accountId: 'acct_a', limitUsd: '100', window: 'day' });
    const d = await dispatcher();
    await d.start();
    try {
      await insertManyAlerts(db, 'bud_1', 'acct_a', 5);
      const started = Date.now();
      await db.pool.query('NOTIFY tokenmeter_alerts');
      const records = await readTopic(kafka, topic, 5, 15_000);
      expect(records).toHaveLength(5);
      // The poll interval is a minute: only the notification can have woken it this soon.
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await d.stop();
    }
  });
});
