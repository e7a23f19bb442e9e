import { Kafka, logLevel, type Admin, type IHeaders } from 'kafkajs';
import { createUsagePublisher, type PublishResult, type UsageEventInput } from '@tokenmeter/gateway-client';
import { createTopicsAndWait } from '@tokenmeter/ingest';

export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

export function testKafka(clientId = 'tokenmeter-test'): Kafka {
  return new Kafka({ clientId, brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
}

/** A topic name no other test (or earlier run) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
}

export async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopics(kafka: Kafka, topics: string[], partitions: number): Promise<void> {
  await withAdmin(kafka, (admin) => createTopicsAndWait(admin, topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 }))));
}

/**
 * Publishes usage events as a gateway does, through libs/gateway-client (validated, keyed by
 * account, acks=all), and fails the test if the publisher refused any: a test that means to send a
 * malformed message sends its bytes with produceRaw.
 */
export async function publishUsage(topic: string, events: readonly UsageEventInput[]): Promise<PublishResult[]> {
  const publisher = createUsagePublisher({ brokers: KAFKA_BROKERS, topic, clientId: 'tokenmeter-test', kafkaConfig: { logLevel: logLevel.NOTHING } });
  try {
    const results = await publisher.publishMany(events);
    const refused = results.filter((r) => r.status === 'rejected');
    if (refused.length > 0) throw new Error(`the publisher refused ${refused.length} event(s), e.g. ${JSON.stringify(refused[0])}`);
    return results;
  } finally {
    await publisher.close();
  }
}

export interface OutgoingMessage {
  key: string | null;
  value: string | Buffer | null;
  /** Only to place a message on a given partition; otherwise the key decides. */
  partition?: number;
}

/**
 * Sends messages byte for byte, bypassing the publisher: for what it would refuse to send
 * (malformed JSON, out-of-contract events, tombstones) to test how the ingestor rejects them, and
 * for events a test must place on a given partition.
 */
export async function produceRaw(kafka: Kafka, topic: string, messages: OutgoingMessage[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

export interface ConsumedMessage {
  partition: number;
  key: string | null;
  value: string;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning until `count` messages arrived (or the timeout passes). */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 20_000): Promise<ConsumedMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader') });
  const received: ConsumedMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      received.push({ partition, key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', headers: headersToStrings(message.headers) });
      if (received.length >= count) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  return received;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k] = Array.isArray(v) ? v.map(String).join(',') : String(v ?? '');
  return out;
}

/** Committed offsets of a group, as "partition -> next offset to read". */
export async function committedOffsets(kafka: Kafka, groupId: string, topic: string): Promise<Record<number, string>> {
  return withAdmin(kafka, async (admin) => {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(entry.partitions.map((p) => [p.partition, p.offset]));
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** waitFor for a condition in memory: `check` every 20 ms, for at most 5 s by default (jest's test timeout). */
export function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  return waitFor(what, async () => check(), timeoutMs, 20);
}
