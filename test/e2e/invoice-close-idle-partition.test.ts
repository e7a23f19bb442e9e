import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { IngestProgressRepository, type Database } from '@tokenmeter/db';
import { checkIngestionComplete, kafkaLagProbe } from '@tokenmeter/invoicing';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { insertApiKey, startApi } from '../helpers/api-app';
import { useEnv } from '../helpers/env';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { createTopics, produceRaw, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';
import { ingestorOn } from '../helpers/ingest';

jest.setTimeout(120_000);

/**
 * The API's close and the invoicer's close apply one completeness rule, broker high watermark
 * included: a partition that is idle (its last event is from mid-October) but fully consumed does
 * not hold back the October close. The API used to be wired without the broker probe and answered
 * 409 "lagging: <topic>/1" here, while `npm run invoicer -- close` passed.
 */
describe('POST /admin/invoices/close with an idle, fully consumed partition (real broker)', () => {
  const topic = uniqueName('usage.idle');
  // The API reads its usage topic from the environment, as in production.
  useEnv({ KAFKA_USAGE_TOPIC: topic });
  let app: NestExpressApplication;
  let base: string;
  let db: Database;
  let kafka: Kafka;
  let admin: string;
  let consumer: UsageConsumer | undefined;

  const publish = (messages: { partition: number; event: GatewayEvent }[]) =>
    produceRaw(kafka, topic, messages.map((m) => ({ partition: m.partition, key: m.event.account_id, value: JSON.stringify(m.event) })));
  const close = async (body: unknown) => {
    const res = await fetch(`${base}/admin/invoices/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  beforeAll(async () => {
    kafka = testKafka();
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    db = openTestDatabase();
    ({ app, base } = await startApi());
  });
  afterAll(async () => {
    await consumer?.stop().catch(() => undefined);
    await app.close();
    await db.close();
  });

  it('closes October although partition 1 has been quiet since October 20, and still refuses while it has a backlog', async () => {
    await resetDatabase(db);
    await seedPriceBook(db);
    admin = await insertApiKey(db, 'admin');
    await publish([
      { partition: 0, event: aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-15T10:00:00Z' }) },
      // Partition 0 has moved past October's end + grace (rule 1)...
      { partition: 0, event: aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-11-10T10:00:00Z' }) },
      // ...partition 1 has not, and never will until its next event: it is simply idle.
      { partition: 1, event: aUsageEvent({ account_id: 'acct_b', occurred_at: '2026-10-20T10:00:00Z' }) },
    ]);

    // The real ingestor consumes everything and records its progress per partition.
    const ingestor = ingestorOn(db);
    consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 100 }, pino({ level: 'silent' }));
    await consumer.start();
    await waitFor('both partitions consumed', async () => {
      const { rows } = await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic]);
      return rows[0].n === 3;
    });
    await consumer.stop();
    consumer = undefined;

    // Without the broker's high watermark the rule cannot tell idle from behind: partition 1 lags.
    const withoutBroker = await checkIngestionComplete(new IngestProgressRepository(db.pool), new Date('2026-11-01T00:00:00Z'), 60, new Date(), topic);
    expect(withoutBroker.lagging.map((l) => l.partition)).toEqual([`${topic}/1`]);

    const closed = await close({ period: '2026-10', finalize: false });
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ period: '2026-10', forced: false, accounts: 2, created: 2 });

    // A real backlog on partition 1 (published, not consumed) still blocks the close.
    await publish([{ partition: 1, event: aUsageEvent({ account_id: 'acct_b', occurred_at: '2026-10-25T10:00:00Z' }) }]);
    const refused = await close({ period: '2026-10', finalize: false });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain(`lagging: ${topic}/1 at 2026-10-20T10:00:00.000Z`);
    expect(refused.body.error.message).not.toContain(`${topic}/0`);
  });
});

/**
 * The topic's partitions are the broker's, not those that have reported: with 120 partitions and
 * few accounts, or a slow first start, a partition can hold usage while ingest_progress has no row
 * for it. The rule used to judge only the rows it had, and called that complete.
 */
describe('close completeness with a partition that has records but has never reported (real broker)', () => {
  const topic = uniqueName('usage.unreported');
  let db: Database;
  let kafka: Kafka;

  beforeAll(async () => {
    kafka = testKafka();
    await createTopics(kafka, [topic], 3);
    db = openTestDatabase();
  });
  afterAll(() => db.close());

  it('counts the unreported partition as lagging, and a partition without records not at all', async () => {
    await resetDatabase(db);
    const event = aUsageEvent({ account_id: 'acct_a', occurred_at: '2026-10-15T10:00:00Z' });
    await produceRaw(kafka, topic, [0, 1].map((partition) => ({ partition, key: event.account_id, value: JSON.stringify(event) })));
    // Partition 0 is past October's end + grace; 1 has a record nobody ingested; 2 is empty.
    await db.pool.query(`INSERT INTO ingest_progress (topic, partition, next_offset, max_occurred_at) VALUES ($1, 0, 1, '2026-11-10T10:00:00Z')`, [topic]);
    const probe = kafkaLagProbe(kafka, topic, pino({ level: 'silent' }));
    const report = await checkIngestionComplete(new IngestProgressRepository(db.pool), new Date('2026-11-01T00:00:00Z'), 60, new Date(), topic, probe).finally(
      () => probe.disconnect(),
    );
    expect(report.lagging).toEqual([{ partition: `${topic}/1`, maxOccurredAt: null }]);
    expect(report.complete).toBe(false);
  });
});
