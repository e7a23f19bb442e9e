import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { DLQ_HEADERS, DomainError } from '@tokenmeter/billing';
import type { Logger } from '@tokenmeter/config';
import { isTransientDbError } from '@tokenmeter/db';
import type { IngestMessage, IngestOutcome, PreparedRejection, UsageIngestor } from '@tokenmeter/ingest';

export interface UsageConsumerOptions {
  topic: string;
  dlqTopic: string;
  groupId: string;
  /** Messages written per database transaction; bounds memory and time between heartbeats. */
  chunkSize?: number;
  partitionsConsumedConcurrently?: number;
  /** Consumer session timeout (default 30 s); heartbeats go out every third of it, at most every 3 s. */
  sessionTimeoutMs?: number;
  maxBytesPerPartition?: number;
  /** Called after every committed chunk (tests and metrics). */
  onChunkCommitted?: (info: ChunkCommitted) => void;
  /** Called when a (re)join of the group hands this member its partitions, by topic. */
  onAssignment?: (assignment: Record<string, number[]>) => void;
}

export interface ChunkCommitted {
  topic: string;
  partition: number;
  messages: number;
  rejected: number;
  /** One per message, in order. */
  outcomes: IngestOutcome[];
  /** Parse + price + database write of the chunk. */
  seconds: number;
  /**
   * Messages left in the partition after this chunk, as of the fetch that returned it (the
   * batch's high watermark): a lag figure that costs no extra broker round trip.
   */
  lag: bigint;
}

export interface UsageConsumerStats {
  chunks: number;
  messages: number;
  rejected: number;
  transientFailures: number;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * kafkajs retries for the ingestor's client (broker connections, metadata, the DLQ producer) and
 * its consumer: ride out a broker outage of up to ~50 s, retries at most 5 s apart, as the same
 * group member. kafkajs' default (5 retries, ~11 s) gave up mid-outage and restarted the consumer
 * as a NEW member, which then waited on the restarted broker for the old member's 30 s session to
 * expire: 21 s of extra stall, measured by `npm run chaos:kafka-kill`. The client's setting
 * governs the connection retries (kafkajs builds the consumer's cluster with it); the consumer's
 * its own run loop.
 */
export const KAFKA_RETRY = { initialRetryTime: 300, maxRetryTime: 5000, retries: 12 };

/**
 * Kafka in: parse -> validate -> price -> record, committing offsets only after the database
 * commit (at-least-once delivery + idempotent writes = each event counted exactly once).
 */
export class UsageConsumer {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  /**
   * Back-off per partition lane, reset by the lane's next stored chunk. Per lane, not one shared
   * counter: a database restart fails every lane at once, and a shared counter doubled once per
   * failing lane (six lanes: 0.5 s ... 16 s), leaving the last lane paused long after the database
   * was back (measured with `npm run chaos:postgres-restart`).
   */
  private readonly backoffMs = new Map<string, number>();
  readonly stats: UsageConsumerStats = { chunks: 0, messages: 0, rejected: 0, transientFailures: 0 };

  constructor(
    private readonly kafka: Kafka,
    private readonly ingestor: UsageIngestor,
    private readonly options: UsageConsumerOptions,
    private readonly log: Logger,
  ) {
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
      maxBytes: 16 * 1024 * 1024,
      // Also how long kafkajs sleeps when every assigned partition is paused (a database outage
      // pauses them all): at the default 5 s, the lanes resumed after their back-off idled up to
      // 5 s more. A fetch returns as soon as data is there, so this costs only idle polls.
      maxWaitTimeInMs: 1000,
      retry: KAFKA_RETRY,
      // A rebalance must not wait for a whole backlog: chunks are bounded and heartbeat between them.
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
    });
    this.producer = kafka.producer({ allowAutoTopicCreation: false });
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) {
        // kafkajs gave up (non-retriable error): exit and let the supervisor restart us;
        // nothing past the last committed offset is lost.
        process.exitCode = 1;
        void this.stop().finally(() => process.exit(1));
      }
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => this.options.onAssignment?.(payload.memberAssignment));
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 6,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.log.info({ topic: this.options.topic, groupId: this.options.groupId }, 'consuming');
  }

  /** Finishes the chunk in flight, commits it, and leaves the group. */
  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const chunkSize = this.options.chunkSize ?? 5000;
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!payload.isRunning() || payload.isStale()) return;
      const chunk = batch.messages.slice(start, start + chunkSize);
      try {
        await this.processChunk(batch.topic, batch.partition, chunk, batch.highWatermark);
      } catch (err) {
        if (isTransient(err)) {
          this.pauseAfterTransientFailure(payload, err);
          return;
        }
        // Some message in the chunk makes the database refuse the whole write for good.
        // Find it, dead-letter it, and store the rest, instead of retrying forever.
        this.log.error({ err, partition: batch.partition }, 'chunk failed permanently, isolating messages');
        try {
          for (const message of chunk) {
            await this.processSingleOrDeadLetter(batch.topic, batch.partition, message, batch.highWatermark);
          }
        } catch (isolationErr) {
          if (isTransient(isolationErr)) {
            this.pauseAfterTransientFailure(payload, isolationErr);
            return;
          }
          throw isolationErr;
        }
      }
      this.backoffMs.delete(`${batch.topic}:${batch.partition}`);
      const last = chunk[chunk.length - 1].offset;
      payload.resolveOffset(last);
      await payload.commitOffsetsIfNecessary(payload.uncommittedOffsets());
      await payload.heartbeat();
    }
  }

  /**
   * The database is down or busy: pause this partition without resolving anything, so the
   * same messages are fetched again after the back-off and the member stays in the group.
   */
  private pauseAfterTransientFailure(payload: EachBatchPayload, err: unknown): void {
    this.stats.transientFailures++;
    const lane = `${payload.batch.topic}:${payload.batch.partition}`;
    const previous = this.backoffMs.get(lane);
    const backoffMs = Math.min(MAX_BACKOFF_MS, previous ? previous * 2 : 500);
    this.backoffMs.set(lane, backoffMs);
    this.log.warn({ err, backoffMs, partition: payload.batch.partition }, 'transient failure, pausing');
    const resume = payload.pause();
    setTimeout(resume, backoffMs).unref();
  }

  private async processChunk(topic: string, partition: number, chunk: KafkaMessage[], highWatermark: string): Promise<void> {
    const startedAt = process.hrtime.bigint();
    const messages = chunk.map((m) => toIngestMessage(topic, partition, m));
    const pricing = await this.ingestor.pricingContext();
    const prepared = this.ingestor.prepare(messages, 'kafka', pricing);
    // Dead-letter first: if we crash after this, the redelivery publishes again (at-least-once
    // on the DLQ) but a rejected message can never be committed past without being published.
    if (prepared.rejections.length > 0) await this.publishDeadLetters(topic, partition, chunk, prepared.rejections);
    const nextOffset = (BigInt(chunk[chunk.length - 1].offset) + 1n).toString();
    const outcomes = await this.ingestor.record(prepared, [{ topic, partition, nextOffset, maxOccurredAt: prepared.maxOccurredAt }]);
    this.stats.chunks++;
    this.stats.messages += chunk.length;
    this.stats.rejected += prepared.rejections.length;
    this.reportCommitted({ topic, partition, messages: chunk.length, rejected: prepared.rejections.length, outcomes }, startedAt, highWatermark, nextOffset);
    this.log.info(
      {
        partition,
        messages: chunk.length,
        rejected: prepared.rejections.length,
        nextOffset,
        ms: Number((process.hrtime.bigint() - startedAt) / 1_000_000n),
      },
      'chunk stored',
    );
  }

  private async processSingleOrDeadLetter(
    topic: string,
    partition: number,
    message: KafkaMessage,
    highWatermark: string,
  ): Promise<void> {
    const startedAt = process.hrtime.bigint();
    try {
      await this.processChunk(topic, partition, [message], highWatermark);
    } catch (err) {
      if (isTransient(err)) throw err;
      const rejection = { code: 'storage_error' as const, reason: refusalReason(err), eventId: null };
      const prepared = this.ingestor.prepareRejected([toIngestMessage(topic, partition, message)], 'kafka', rejection);
      await this.publishDeadLetters(topic, partition, [message], prepared.rejections);
      const nextOffset = (BigInt(message.offset) + 1n).toString();
      const outcomes = await this.ingestor.record(prepared, [{ topic, partition, nextOffset, maxOccurredAt: null }]);
      this.stats.rejected++;
      this.reportCommitted({ topic, partition, messages: 1, rejected: 1, outcomes }, startedAt, highWatermark, nextOffset);
    }
  }

  private reportCommitted(
    chunk: Omit<ChunkCommitted, 'seconds' | 'lag'>,
    startedAt: bigint,
    highWatermark: string,
    nextOffset: string,
  ): void {
    this.options.onChunkCommitted?.({
      ...chunk,
      seconds: Number(process.hrtime.bigint() - startedAt) / 1e9,
      lag: BigInt(highWatermark) - BigInt(nextOffset),
    });
  }

  private async publishDeadLetters(
    topic: string,
    partition: number,
    chunk: KafkaMessage[],
    rejections: PreparedRejection[],
  ): Promise<void> {
    await this.producer.send({
      topic: this.options.dlqTopic,
      acks: -1,
      messages: rejections.map(({ index, rejection }) => ({
        key: chunk[index].key,
        value: chunk[index].value,
        headers: {
          [DLQ_HEADERS.rejectCode]: rejection.code,
          [DLQ_HEADERS.rejectReason]: rejection.reason,
          [DLQ_HEADERS.originalTopic]: topic,
          [DLQ_HEADERS.originalPartition]: String(partition),
          [DLQ_HEADERS.originalOffset]: chunk[index].offset,
        },
      })),
    });
    for (const { rejection, index } of rejections) {
      this.log.warn({ code: rejection.code, reason: rejection.reason, offset: chunk[index].offset, partition }, 'rejected event');
    }
  }
}

function toIngestMessage(topic: string, partition: number, m: KafkaMessage): IngestMessage {
  return { value: m.value, key: m.key ? m.key.toString('utf8') : null, kafka: { topic, partition, offset: m.offset } };
}

/**
 * Why a single event that passed validation was not stored, for the dead letter and the
 * rejected_events row: a domain error raised while pricing or building its rows says so; a
 * database error names its SQLSTATE (e.g. 22021, a NUL byte in a text field).
 */
function refusalReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof DomainError) return `the event could not be priced or stored (${err.code}): ${message}`;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `database refused the event (SQLSTATE ${code}): ${message}`;
  return `the event could not be stored: ${message}`;
}

function isTransient(err: unknown): boolean {
  return isTransientKafkaError(err) || isTransientDbError(err);
}

/**
 * A broker problem worth retrying later. Once kafkajs has used up its own retries it throws
 * KafkaJSNumberOfRetriesExceeded (or a KafkaJSNonRetriableError) that is not itself `retriable`
 * but wraps one that is, e.g. the DLQ producer's connection error during a broker outage. Taken
 * for permanent, that error sent the chunk down the isolation path and dead-lettered a malformed
 * message as `storage_error` (`npm run chaos:kafka-kill`); so look through the causes.
 */
function isTransientKafkaError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const { retriable, name, cause } = e as { retriable?: unknown; name?: unknown; cause?: unknown };
    if (retriable === true || name === 'KafkaJSNumberOfRetriesExceeded' || name === 'KafkaJSConnectionError') return true;
    e = cause;
  }
  return false;
}
