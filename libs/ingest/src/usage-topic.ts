import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import type { TokenmeterConfig } from '@tokenmeter/config';

/** The slice of pino's logger these helpers use (scripts pass their own). */
export interface WarnLog {
  warn(fields: object, message: string): void;
}

const isUnknownTopic = (err: unknown): boolean => (err as { type?: string } | null)?.type === 'UNKNOWN_TOPIC_OR_PARTITION';

/**
 * admin.createTopics({ waitForLeaders: true }) that survives the broker's metadata lagging behind
 * its own create. Right after a topic with many partitions is created (120 here), the next
 * create's wait for leaders can ask the broker for a topic it does not list yet and get
 * UNKNOWN_TOPIC_OR_PARTITION, which kafkajs 2.2.4 only tolerates as LEADER_NOT_AVAILABLE: it
 * fails the call although the topic was created (seen on this box: the notifier's topics after the
 * ingestor's). On that error this waits itself until every partition of every topic has a leader.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  try {
    await admin.createTopics({ waitForLeaders: true, topics });
    return;
  } catch (err) {
    if (!isUnknownTopic(err)) throw err;
  }
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
      if (found.length === names.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      if (!isUnknownTopic(err) && (err as { type?: string }).type !== 'LEADER_NOT_AVAILABLE') throw err;
    }
    if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} were created but have no leaders after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** How many partitions the broker says the topic has; undefined when it does not exist. */
export async function fetchPartitionCount(admin: Admin, topic: string): Promise<number | undefined> {
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics.find((t) => t.name === topic)?.partitions.length;
  } catch (err) {
    if (isUnknownTopic(err)) return undefined;
    throw err;
  }
}

function warnMismatch(log: WarnLog, topic: string, actual: number, configured: number): void {
  log.warn(
    { topic, partitions: actual, configured },
    `usage topic ${topic} has ${actual} partitions but KAFKA_USAGE_TOPIC_PARTITIONS is ${configured}: the topic is left as it is ` +
      `(adding partitions remaps account keys, docs/scaling.md); the authorize watermark uses the topic's real count. ` +
      `Set KAFKA_USAGE_TOPIC_PARTITIONS=${actual} to silence this.`,
  );
}

/**
 * Creates the usage topic with KAFKA_USAGE_TOPIC_PARTITIONS partitions and its dead-letter topic
 * if they do not exist. A topic that exists is never altered: with another partition count (made
 * by an older default, by hand, or by the broker's auto-create when a gateway published first)
 * this logs a warning and returns the real count, which is what everything downstream must use.
 */
export async function ensureUsageTopics(kafka: Kafka, config: TokenmeterConfig['kafka'], log: WarnLog): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing: ITopicConfig[] = [];
    if (!existing.has(config.topic)) missing.push({ topic: config.topic, numPartitions: config.topicPartitions, replicationFactor: 1 });
    // Dead letters are rare and read by hand: their order does not matter, so few partitions do.
    if (!existing.has(config.dlqTopic)) missing.push({ topic: config.dlqTopic, numPartitions: Math.min(config.topicPartitions, 6), replicationFactor: 1 });
    if (missing.length > 0) await createTopicsAndWait(admin, missing);
    const actual = await fetchPartitionCount(admin, config.topic);
    if (actual === undefined) throw new Error(`usage topic ${config.topic} is missing right after it was created`);
    if (actual !== config.topicPartitions) warnMismatch(log, config.topic, actual, config.topicPartitions);
    return actual;
  } finally {
    await admin.disconnect();
  }
}

/**
 * The usage topic's partition count as the broker reports it, for code that must wait for every
 * partition (the authorize watermark): trusting the setting would either never release a hold (setting
 * above the real count) or release it while a partition has not reported yet (below). Until the
 * broker has answered, and while the topic does not exist, the setting stands in. Re-read every
 * refreshMs so a topic created (or grown by an operator) after start is picked up.
 */
export class UsageTopicPartitions {
  private count: number;
  private timer: NodeJS.Timeout | undefined;
  private admin: Admin | undefined;
  private warnedFor: number | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly config: Pick<TokenmeterConfig['kafka'], 'topic' | 'topicPartitions'>,
    private readonly log: WarnLog,
    private readonly refreshMs = 60_000,
  ) {
    this.count = config.topicPartitions;
  }

  current(): number {
    return this.count;
  }

  /** Reads the count once (a broker that cannot be reached leaves the last known count), then keeps it fresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.admin?.disconnect().catch(() => undefined);
    this.admin = undefined;
  }

  async refresh(): Promise<void> {
    try {
      if (this.admin === undefined) {
        const admin = this.kafka.admin();
        await admin.connect();
        this.admin = admin;
      }
      const actual = await fetchPartitionCount(this.admin, this.config.topic);
      if (actual === undefined) return;
      if (actual !== this.config.topicPartitions && this.warnedFor !== actual) {
        this.warnedFor = actual;
        warnMismatch(this.log, this.config.topic, actual, this.config.topicPartitions);
      }
      this.count = actual;
    } catch (err) {
      this.log.warn({ err, topic: this.config.topic, partitions: this.count }, 'could not read the usage topic partition count from Kafka; keeping the last known count');
      await this.admin?.disconnect().catch(() => undefined);
      this.admin = undefined;
    }
  }
}
