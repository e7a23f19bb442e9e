import { loadConfig } from '@tokenmeter/config';
import { createTopicsAndWait, ensureUsageTopics, fetchPartitionCount, UsageTopicPartitions } from '@tokenmeter/ingest';
import { startApi } from '../helpers/api-app';
import { useEnv } from '../helpers/env';
import { createTopics, testKafka, uniqueName, withAdmin } from '../helpers/kafka';
import { useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(60_000);

/** The usage topic's partition count: created from KAFKA_USAGE_TOPIC_PARTITIONS, never altered, read back from the broker. */
describe('usage topic partitions', () => {
  const kafka = testKafka();
  const made: string[] = [];
  const kafkaConfig = (topic: string, partitions: number) =>
    loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS, KAFKA_USAGE_TOPIC: topic, KAFKA_USAGE_TOPIC_PARTITIONS: String(partitions) }).kafka;
  const warnings = () => {
    const seen: { fields: object; message: string }[] = [];
    return { seen, log: { warn: (fields: object, message: string) => seen.push({ fields, message }) } };
  };
  const partitionsOf = (topic: string) => withAdmin(kafka, (admin) => fetchPartitionCount(admin, topic));

  afterAll(async () => {
    await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: made })).catch(() => undefined);
  });

  it('defaults to 120 partitions', () => {
    expect(loadConfig({}).kafka.topicPartitions).toBe(120);
    expect(() => loadConfig({ KAFKA_USAGE_TOPIC_PARTITIONS: '0' })).toThrow(/KAFKA_USAGE_TOPIC_PARTITIONS/);
    expect(() => loadConfig({ KAFKA_USAGE_TOPIC_PARTITIONS: '1001' })).toThrow(/KAFKA_USAGE_TOPIC_PARTITIONS/);
  });

  it('creates a missing usage topic with the configured count, and its dead-letter topic, without a warning', async () => {
    const topic = uniqueName('usage.partitions');
    made.push(topic, `${topic}.dlq`);
    const { seen, log } = warnings();
    expect(await ensureUsageTopics(kafka, kafkaConfig(topic, 3), log)).toBe(3);
    expect(await partitionsOf(topic)).toBe(3);
    expect(await partitionsOf(`${topic}.dlq`)).toBe(3);
    expect(seen).toEqual([]);
  });

  it('leaves an existing topic with another count as it is, warns, and returns the real count', async () => {
    const topic = uniqueName('usage.partitions');
    made.push(topic, `${topic}.dlq`);
    await createTopics(kafka, [topic], 2);
    const { seen, log } = warnings();
    expect(await ensureUsageTopics(kafka, kafkaConfig(topic, 5), log)).toBe(2);
    expect(await partitionsOf(topic)).toBe(2);
    expect(seen).toHaveLength(1);
    expect(seen[0].message).toContain(`usage topic ${topic} has 2 partitions but KAFKA_USAGE_TOPIC_PARTITIONS is 5`);
    expect(seen[0].fields).toMatchObject({ topic, partitions: 2, configured: 5 });
  });

  it("the watermark's count is the broker's, the setting only while the topic does not exist", async () => {
    const topic = uniqueName('usage.partitions');
    made.push(topic);
    const { seen, log } = warnings();
    const counts = new UsageTopicPartitions(kafka, { topic, topicPartitions: 5 }, log, 3_600_000);
    try {
      await counts.start();
      expect(counts.current()).toBe(5);
      await createTopics(kafka, [topic], 2);
      await counts.refresh();
      expect(counts.current()).toBe(2);
      await counts.refresh();
      expect(seen.map((s) => s.message)).toEqual([expect.stringContaining('has 2 partitions but KAFKA_USAGE_TOPIC_PARTITIONS is 5')]);
    } finally {
      await counts.stop();
    }
  });

  it('creates the next topic right after a 120-partition one (the broker may not list it yet while leaders are awaited)', async () => {
    const big = uniqueName('usage.partitions.big');
    const next = uniqueName('usage.partitions.next');
    made.push(big, next);
    await withAdmin(kafka, async (admin) => {
      await createTopicsAndWait(admin, [{ topic: big, numPartitions: 120, replicationFactor: 1 }]);
      await createTopicsAndWait(admin, [{ topic: next, numPartitions: 3, replicationFactor: 1 }]);
    });
    expect(await partitionsOf(big)).toBe(120);
    expect(await partitionsOf(next)).toBe(3);
  });
});

describe('the API reads the usage topic partition count from the broker', () => {
  const kafka = testKafka();
  const topic = uniqueName('usage.partitions.api');
  useEnv({ KAFKA_USAGE_TOPIC: topic, KAFKA_USAGE_TOPIC_PARTITIONS: '5' });
  useTestDatabase();

  afterAll(async () => {
    await withAdmin(kafka, (admin) => admin.deleteTopics({ topics: [topic] })).catch(() => undefined);
  });

  it("its authorize watermark waits for the topic's 2 partitions, not the setting's 5", async () => {
    await createTopics(kafka, [topic], 2);
    const { app } = await startApi('silent');
    try {
      expect(app.get(UsageTopicPartitions).current()).toBe(2);
    } finally {
      await app.close();
    }
  });
});
