import type { Kafka } from 'kafkajs';
import type { TokenmeterConfig } from '@tokenmeter/config';

/**
 * Creates the usage topic and its dead-letter topic if they do not exist (a no-op when they do).
 * Partition count bounds how many ingestor instances can share the work.
 */
export async function ensureTopics(kafka: Kafka, config: TokenmeterConfig['kafka'], partitions = 6): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [config.topic, config.dlqTopic].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
      });
    }
  } finally {
    await admin.disconnect();
  }
}
