import { Webhook } from 'standardwebhooks';
import type { Kafka } from 'kafkajs';
import {
  BudgetSpendRepository,
  WebhooksRepository,
} from '@tokenmeter/db';
import {
  newWebhookSecret,
} from '@tokenmeter/limits';
import { aUsageEvent } from '../factories/usage-events';
import { startReceiver, type Receiver } from '../helpers/alerts';
import { createTopics, publishUsage, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { startApp, stopApp, type AppProcess } from '../helpers/processes';
import { storedEventCount, TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { budgetsServiceOn } from '../helpers/limits';

jest.setTimeout(300_000);

const EVENTS = 6000;

/**
 * The whole path with real processes: events through the real broker, an ingestor SIGKILLed
 * mid-stream and restarted (so chunks are redelivered), plus redeliveries published on purpose;
 * the notifier publishing the alerts and a webhook receiver that fails twice per message before
 * it answers 200. Each threshold alerts exactly once, the receiver accepts each alert once, with a
 * valid Standard Webhooks signature, and the budget's spend equals the rollups to the unit.
 */
describe('spend limits end to end: broker, killed ingestor, notifier, webhook receiver', () => {
  const db = useTestDatabase();
  let kafka: Kafka;
  let receiver: Receiver;
  const apps: AppProcess[] = [];

  beforeAll(() => {
    kafka = testKafka('limits-e2e');
  });
  afterAll(async () => {
    await Promise.all(apps.map((a) => stopApp(a, 'SIGKILL')));
    await receiver?.close();
  });

  it('raises each threshold once and delivers it once, signed, after a kill, redeliveries and two failed attempts', async () => {
    await db.pool.query(`INSERT INTO accounts (id, name) VALUES ('acct_e2e', 'E2E')`);
    const budgets = budgetsServiceOn(db);
    // 6000 events x $0.00175997 = $10.55982: the $12 budget ends at 88%, past 25, 50 and 75.
    const budget = await budgets.createBudget(
      { accountId: 'acct_e2e', apiKeyId: null, model: null, limitUsd: '12', window: 'month', thresholds: ['25', '50', '75', '100'], enforce: 'hard' },
      { keyId: null, requestId: 'e2e' },
    );

    const attemptsById = new Map<string, number>();
    receiver = await startReceiver({
      answer: (_n, headers) => {
        const id = String(headers['webhook-id']);
        const attempt = (attemptsById.get(id) ?? 0) + 1;
        attemptsById.set(id, attempt);
        return attempt <= 2 ? 503 : 200;
      },
    });
    const secret = newWebhookSecret();
    await new WebhooksRepository(db.pool).createEndpoint({ id: 'wh_e2e', url: receiver.url, events: ['budget.threshold_crossed'], secret });

    const topic = uniqueName('usage');
    const alertsTopic = uniqueName('tokenmeter.alerts.e2e');
    await createTopics(kafka, [topic, `${topic}.dlq`, alertsTopic], 4);
    const now = Date.now();
    const events = Array.from({ length: EVENTS }, (_, i) =>
      aUsageEvent({ account_id: 'acct_e2e', occurred_at: new Date(now - (i % 600) * 1000).toISOString() }),
    );
    // Every tenth event is published twice: redeliveries the ingest must count once.
    const messages = [...events, ...events.filter((_, i) => i % 10 === 0)];
    await publishUsage(topic, messages);

    const ingestorEnv = {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_USAGE_TOPIC: topic,
      KAFKA_GROUP_ID: uniqueName('group'),
      INGEST_CHUNK_SIZE: '100',
      INGEST_PARTITION_CONCURRENCY: '1',
      INGEST_SESSION_TIMEOUT_MS: '10000',
      LOG_LEVEL: 'info',
    };
    const first = startApp('apps/ingestor/src/main.ts', ingestorEnv);
    apps.push(first);
    await waitFor('some events stored', async () => (await storedEventCount(db)) >= 1000, 90_000, 20);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(await storedEventCount(db)).toBeLessThan(EVENTS); // it really died mid-stream
    apps.push(startApp('apps/ingestor/src/main.ts', ingestorEnv));
    apps.push(
      startApp('apps/notifier/src/main.ts', {
        DATABASE_URL: TEST_DATABASE_URL,
        KAFKA_ALERTS_TOPIC: alertsTopic,
        ALERTS_POLL_INTERVAL_MS: '200',
        WEBHOOK_POLL_INTERVAL_MS: '100',
        WEBHOOK_RETRY_SCHEDULE: '100ms,100ms,100ms',
        LOG_LEVEL: 'info',
      }),
    );

    await waitFor('all events stored', async () => (await storedEventCount(db)) === EVENTS, 180_000);
    const ok = () => receiver.requests.filter((r) => r.answeredStatus === 200);
    await waitFor('three alerts accepted by the receiver', async () => ok().length >= 3, 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // anything redelivered late must not add an alert or a delivery

    const { rows: alerts } = await db.pool.query(`SELECT id::text, threshold_pct::float8 AS pct, direction FROM budget_alerts ORDER BY threshold_pct`);
    expect(alerts.map((a) => [a.pct, a.direction])).toEqual([[25, 'up'], [50, 'up'], [75, 'up']]);

    const accepted = ok();
    expect(accepted.map((r) => r.headers['webhook-id']).sort()).toEqual(alerts.map((a) => `alert_${a.id}`).sort());
    expect([...attemptsById.values()]).toEqual([3, 3, 3]);
    const verifier = new Webhook(secret);
    for (const r of accepted) {
      const event = verifier.verify(r.body, {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      }) as { type: string; data: { budget_id: string; limit_usd: string } };
      expect(event.type).toBe('budget.threshold_crossed');
      expect(event.data).toMatchObject({ budget_id: budget.budget.id, limit_usd: '12' });
    }

    expect((await budgets.getBudget(budget.budget.id)).spendUsd).toBe('10.55982');
    expect(await new BudgetSpendRepository(db.pool).drift()).toEqual([]);
  });
});
