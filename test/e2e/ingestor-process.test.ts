import { aUsageEvent, defaultEventsCostUsd } from '../factories/usage-events';
import { fetchPartitionCount } from '@tokenmeter/ingest';
import { committedOffsets, createTopics, publishUsage, testKafka, uniqueName, waitFor, withAdmin } from '../helpers/kafka';
import { freePort, startApp, stopApp, type AppProcess } from '../helpers/processes';
import { storedEventCount, TEST_DATABASE_URL, totals, useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(240_000);

/** The ingestor as the separate process it is in production, so it can be killed for real. */
describe('ingestor process', () => {
  const db = useTestDatabase();
  const kafka = testKafka();
  const apps: AppProcess[] = [];

  const storedCount = () => storedEventCount(db);
  const start = (topic: string, groupId: string, env: Record<string, string> = {}) => {
    const app = startApp('apps/ingestor/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_USAGE_TOPIC: topic,
      KAFKA_GROUP_ID: groupId,
      INGEST_CHUNK_SIZE: '250',
      INGEST_PARTITION_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
      ...env,
    });
    apps.push(app);
    return app;
  };

  async function publish(topic: string, n: number): Promise<void> {
    const events = Array.from({ length: n }, (_, i) =>
      aUsageEvent({ account_id: `acct_${i % 50}`, occurred_at: new Date(Date.UTC(2026, 10, 1 + (i % 27), i % 24)).toISOString() }),
    );
    await publishUsage(topic, events);
  }

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => stopApp(a, 'SIGKILL')));
  });

  it('killed with SIGKILL mid-stream and restarted, it counts every event exactly once', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 4);
    await publish(topic, 20_000);

    const first = start(topic, groupId, { INGEST_SESSION_TIMEOUT_MS: '10000' });
    await waitFor('some events stored', async () => (await storedCount()) >= 2000, 60_000, 50);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const atKill = await storedCount();
    expect(atKill).toBeLessThan(20_000); // it really died mid-stream

    // The killed member never leaves the group: its partitions move only once its session expires.
    // A 10 s session (INGEST_SESSION_TIMEOUT_MS) keeps that wait short on a loaded machine, where
    // the 30 s default plus a slow rejoin once ran past two minutes.
    start(topic, groupId, { INGEST_SESSION_TIMEOUT_MS: '10000' });
    await waitFor('all events stored', async () => (await storedCount()) === 20_000, 180_000);
    await new Promise((r) => setTimeout(r, 1000)); // anything redelivered after the kill must still be a no-op
    const t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '20000', cost_usd: defaultEventsCostUsd(20_000), unpriced: '0' });
    expect(t.rollup).toEqual(t.raw);
  });

  it('two ingestors in one consumer group share the partitions and count every event once', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 6);
    const a = start(topic, groupId);
    const b = start(topic, groupId);
    await waitFor('both ingestors started', async () => a.output().includes('ingestor started') && b.output().includes('ingestor started'), 60_000);
    await publish(topic, 12_000);
    await waitFor('all events stored', async () => (await storedCount()) === 12_000, 120_000);

    const t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '12000', cost_usd: defaultEventsCostUsd(12_000) });
    expect(t.rollup).toEqual(t.raw);
    // Both members did part of the work.
    expect(a.output()).toContain('chunk stored');
    expect(b.output()).toContain('chunk stored');
  });

  it('with INGESTOR_PROCESSES=2 one ingestor runs two group members, sums their metrics, and stops cleanly', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 6);
    const port = await freePort();
    const app = start(topic, groupId, { INGESTOR_PROCESSES: '2', INGESTOR_METRICS_PORT: String(port) });
    await waitFor('both processes started', async () => app.output().split('ingestor process started').length - 1 === 2, 60_000);
    await publish(topic, 12_000);
    await waitFor('all events stored', async () => (await storedCount()) === 12_000, 120_000);

    const t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '12000', cost_usd: defaultEventsCostUsd(12_000) });
    expect(t.rollup).toEqual(t.raw);
    // Two different processes stored chunks...
    const pids = new Set([...app.output().matchAll(/"pid":(\d+)[^\n]*"msg":"chunk stored"/g)].map((m) => m[1]));
    expect(pids.size).toBe(2);
    // ...and the one metrics endpoint counts every accepted event once, whoever stored it.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('tokenmeter_ingest_events_total{outcome="accepted"} 12000');

    expect(await stopApp(app, 'SIGTERM')).toBe(0);
    expect(app.output().split('ingestor process stopped').length - 1).toBe(2);
    const offsets = await committedOffsets(kafka, groupId, topic);
    const committed = Object.values(offsets).reduce((sum, o) => sum + Math.max(0, Number(o)), 0);
    expect(committed).toBe(12_000);
  });

  it('on SIGTERM finishes the chunk in flight, commits its offsets and exits cleanly', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    await publish(topic, 20_000);
    const app = start(topic, groupId);
    await waitFor('some events stored', async () => (await storedCount()) >= 1000, 60_000, 50);
    expect(await stopApp(app, 'SIGTERM')).toBe(0);

    // Everything stored was committed, and nothing committed is missing from the database.
    const offsets = await committedOffsets(kafka, groupId, topic);
    const { rows } = await db.pool.query('SELECT partition, next_offset::text FROM ingest_progress WHERE topic = $1', [topic]);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(offsets[row.partition]).toBe(row.next_offset);
    const committed = Object.values(offsets).reduce((sum, o) => sum + Math.max(0, Number(o)), 0);
    expect(await storedCount()).toBe(committed);
  });

  it('creates a missing usage topic with KAFKA_USAGE_TOPIC_PARTITIONS partitions and ingests from every one', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    const app = start(topic, groupId, { KAFKA_USAGE_TOPIC_PARTITIONS: '3' });
    const partitions = () => withAdmin(kafka, (admin) => fetchPartitionCount(admin, topic));
    await waitFor('the ingestor created the topic', async () => (await partitions()) !== undefined, 60_000);
    expect(await partitions()).toBe(3);
    await publish(topic, 3000);
    await waitFor('all events stored', async () => (await storedCount()) === 3000, 120_000);
    const { rows } = await db.pool.query('SELECT partition FROM ingest_progress WHERE topic = $1 ORDER BY partition', [topic]);
    expect(rows.map((r) => r.partition)).toEqual([0, 1, 2]);
    expect(app.output()).not.toContain('KAFKA_USAGE_TOPIC_PARTITIONS is');
  });

  it('on a topic made with another count, warns, leaves the topic alone and ingests it', async () => {
    const topic = uniqueName('usage');
    const groupId = uniqueName('group');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    await publish(topic, 2000);
    const app = start(topic, groupId, { KAFKA_USAGE_TOPIC_PARTITIONS: '3' });
    await waitFor('all events stored', async () => (await storedCount()) === 2000, 120_000);
    expect(app.output()).toContain(`usage topic ${topic} has 2 partitions but KAFKA_USAGE_TOPIC_PARTITIONS is 3`);
    expect(await withAdmin(kafka, (admin) => fetchPartitionCount(admin, topic))).toBe(2);
  });
});
