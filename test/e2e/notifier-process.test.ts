import type { Database } from '@tokenmeter/db';
import { newWebhookSecret } from '@tokenmeter/limits';
import { WebhooksRepository } from '@tokenmeter/db';
import { insertBudget, insertManyAlerts, resetAlertTables, startReceiver, type Receiver } from '../helpers/alerts';
import { createTopics, readTopic, testKafka, uniqueName, waitFor, withAdmin } from '../helpers/kafka';
import { startApp, stopApp, type AppProcess } from '../helpers/processes';
import { openTestDatabase, TEST_DATABASE_URL } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const ALERTS = 3000;

/**
 * The notifier as its own process (npm run start:notifier): SIGKILLed in the middle of publishing
 * and started again, every alert ends up published, with exactly one delivery row per endpoint and
 * every message received; Kafka and HTTP may carry duplicates of what was in flight at the kill,
 * with the same id. SIGTERM stops it cleanly (exit 0).
 */
describe('notifier process', () => {
  let db: Database;
  let receiver: Receiver;
  const apps: AppProcess[] = [];

  beforeAll(async () => {
    db = openTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await stopApp(app, 'SIGKILL');
    await receiver?.close();
    await db.close();
  });

  it('killed mid-batch and restarted: no alert lost, one delivery row per endpoint, duplicates only on the wire', async () => {
    await resetAlertTables(db);
    receiver = await startReceiver();
    const repo = new WebhooksRepository(db.pool);
    await repo.createEndpoint({ id: 'wh_a', url: receiver.url, events: ['*'], secret: newWebhookSecret() });
    await repo.createEndpoint({ id: 'wh_b', url: receiver.url.replace('/hooks/', '/other/'), events: ['budget.threshold_crossed'], secret: newWebhookSecret() });
    await insertBudget(db, { id: 'bud_1', accountId: 'acct_a', limitUsd: '100', window: 'day' });
    await insertManyAlerts(db, 'bud_1', 'acct_a', ALERTS);

    const kafka = testKafka('notifier-process-test');
    const topic = uniqueName('tokenmeter.alerts.proc');
    await createTopics(kafka, [topic], 3);
    const env = {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_ALERTS_TOPIC: topic,
      ALERTS_BATCH_SIZE: '10',
      ALERTS_POLL_INTERVAL_MS: '200',
      WEBHOOK_POLL_INTERVAL_MS: '100',
      WEBHOOK_RETRY_SCHEDULE: '50ms,50ms',
      WEBHOOK_CONCURRENCY: '8',
      // A request cut off by the kill is sent again once its lease (timeout + 5 s) runs out.
      WEBHOOK_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'info',
    };
    const published = async () => (await db.pool.query('SELECT count(*)::int AS n FROM budget_alerts WHERE published_at IS NOT NULL')).rows[0].n as number;

    const first = startApp('apps/notifier/src/main.ts', env);
    apps.push(first);
    const atKill = await waitFor('some alerts published', async () => {
      const n = await published();
      return n >= 200 ? n : undefined;
    }, 60_000, 10);
    expect(await stopApp(first, 'SIGKILL')).toBe('SIGKILL');
    const afterKill = await published();
    expect(afterKill).toBeLessThan(ALERTS); // it really died mid-way

    const second = startApp('apps/notifier/src/main.ts', env);
    apps.push(second);
    await waitFor('every alert published', async () => (await published()) === ALERTS, 90_000, 100);
    await waitFor(
      'every delivery delivered',
      async () => (await db.pool.query("SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'delivered'")).rows[0].n === 2 * ALERTS,
      90_000,
      100,
    );

    // Exactly once in the database: one delivery per (endpoint, alert).
    const rows = (await db.pool.query('SELECT endpoint_id, count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM webhook_deliveries GROUP BY endpoint_id ORDER BY 1')).rows;
    expect(rows).toEqual([
      { endpoint_id: 'wh_a', n: ALERTS, d: ALERTS },
      { endpoint_id: 'wh_b', n: ALERTS, d: ALERTS },
    ]);
    // At least once on the wire, and every message at least once.
    // Everything the topic holds (its high watermarks), so the read cannot stop short.
    const total = (await withAdmin(kafka, (a) => a.fetchTopicOffsets(topic))).reduce((sum, p) => sum + Number(p.high), 0);
    const records = await readTopic(kafka, topic, total, 60_000);
    expect(records).toHaveLength(total);
    const kafkaIds = new Set(records.map((r) => r.headers['message-id']));
    expect(kafkaIds.size).toBe(ALERTS);
    const httpIds = receiver.requests.map((q) => `${q.headers['webhook-id']}`);
    expect(new Set(httpIds).size).toBe(ALERTS);
    // Both endpoints got every message (they differ by path).
    const perEndpoint = new Set(receiver.requests.map((q) => `${q.url} ${q.headers['webhook-id']}`));
    expect(perEndpoint.size).toBe(2 * ALERTS);
    process.stdout.write(
      `[notifier-process] killed with ${atKill}..${afterKill}/${ALERTS} published; Kafka records ${records.length} ` +
        `(${records.length - ALERTS} duplicates); HTTP requests ${receiver.requests.length} for ${2 * ALERTS} deliveries ` +
        `(${receiver.requests.length - 2 * ALERTS} duplicates)\n`,
    );

    expect(await stopApp(second, 'SIGTERM')).toBe(0);
    expect(second.output()).toContain('notifier stopping');
  });
});
