import { Kafka, Partitioners, type KafkaConfig, type Producer } from 'kafkajs';
import type { RejectionCode } from '@tokenmeter/billing/usage-event';
import { EVENT_ID_NAMESPACE } from './event-id';
import { prepareUsageMessage, type UsageEventInput, type UsageMessage } from './usage-message';

/** The contract's topic (docs/event-contract.md). */
export const USAGE_TOPIC = 'gateway.usage.v1';

export interface UsagePublisherOptions {
  brokers: string[];
  /** Default gateway.usage.v1. It must exist: the publisher never creates topics (a typo fails instead). */
  topic?: string;
  clientId?: string;
  /** Anything else kafkajs takes (ssl, sasl, logLevel, retry, connectionTimeout, ...). */
  kafkaConfig?: Omit<KafkaConfig, 'brokers' | 'clientId'>;
  /** The UUIDv5 namespace of minted event ids (default EVENT_ID_NAMESPACE); see eventIdForRequest. */
  eventIdNamespace?: string;
  /** Most events in one produce request (default 1000). */
  maxBatchSize?: number;
  /** Most value + key bytes in one produce request (default 900,000: under the broker's default 1 MiB message.max.bytes). */
  maxBatchBytes?: number;
  /** The clock validation runs at (the ingestor refuses occurred_at more than 5 minutes ahead of its own). */
  clock?: () => Date;
}

/** Acknowledged by the broker with acks=all; the ingestor then stores it, or finds it a duplicate or conflict. */
export interface Accepted {
  status: 'accepted';
  eventId: string;
}

/** Refused by the event contract before sending, with the ingestor's own code and reason; nothing was sent. */
export interface Rejected {
  status: 'rejected';
  eventId: string | null;
  code: RejectionCode;
  reason: string;
}

/** Valid, but the broker did not acknowledge it: publish `event` again (same event_id, so at most one is stored). */
export interface Unsent {
  status: 'unsent';
  eventId: string;
  reason: string;
  event: UsageEventInput & { event_id: string };
}

export type PublishResult = Accepted | Rejected;

/**
 * A publish the broker did not (fully) acknowledge. Nothing is dropped silently: `results` has every
 * event of the call in call order, and `unsent` the ones to publish again. An unsent event may still
 * have reached the topic (a lost acknowledgement); publishing it again is safe, as the ingestor
 * dedupes by event_id.
 */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    readonly results: (Accepted | Rejected | Unsent)[],
    override readonly cause: unknown,
  ) {
    const unsent = results.filter((r) => r.status === 'unsent').length;
    super(`${unsent} of ${results.length} usage event(s) not acknowledged by the broker: ${errorText(cause)}`);
  }

  get unsent(): Unsent['event'][] {
    return this.results.filter((r): r is Unsent => r.status === 'unsent').map((r) => r.event);
  }
}

export interface UsagePublisher {
  /** Validates and sends one event; resolves when the broker acknowledged it (or with its rejection). */
  publish(event: UsageEventInput): Promise<PublishResult>;
  /** Validates each event and sends the valid ones in batches; one result per event, in order. */
  publishMany(events: readonly UsageEventInput[]): Promise<PublishResult[]>;
  /** Sends what is queued, then disconnects. Publishing after close() is refused. */
  close(): Promise<void>;
}

export function createUsagePublisher(options: UsagePublisherOptions): UsagePublisher {
  return new KafkaUsagePublisher(options);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The events of one publishMany call, settled as their batches are acknowledged or fail. */
class PendingCall {
  readonly results: (Accepted | Rejected | Unsent | undefined)[];
  readonly done: Promise<PublishResult[]>;
  private waiting = 0;
  private failure: unknown = undefined;
  private failed = false;
  private resolve!: (results: PublishResult[]) => void;
  private reject!: (error: PublishError) => void;

  constructor(size: number) {
    this.results = new Array(size);
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  enqueued(): void {
    this.waiting++;
  }

  acknowledged(index: number, message: UsageMessage): void {
    this.results[index] = { status: 'accepted', eventId: message.eventId };
    this.settleOne();
  }

  unacknowledged(index: number, message: UsageMessage, error: unknown): void {
    this.results[index] = { status: 'unsent', eventId: message.eventId, reason: errorText(error), event: JSON.parse(message.value) };
    if (!this.failed) this.failure = error;
    this.failed = true;
    this.settleOne();
  }

  /** After the call's events are all rejected or enqueued. */
  sealed(): void {
    if (this.waiting === 0) this.finish();
  }

  private settleOne(): void {
    if (--this.waiting === 0) this.finish();
  }

  private finish(): void {
    const results = this.results as (Accepted | Rejected | Unsent)[];
    if (this.failed) this.reject(new PublishError(results, this.failure));
    else this.resolve(results as PublishResult[]);
  }
}

interface Outbound {
  message: UsageMessage;
  bytes: number;
  call: PendingCall;
  index: number;
}

// A Kafka record's own framing (lengths, offsets delta, timestamp delta, attributes), roughly.
const RECORD_OVERHEAD_BYTES = 32;

/**
 * One idempotent producer and one send loop. publish/publishMany only validate and queue; the loop
 * sends whatever is queued as one produce request (up to the batch limits) and, while that is in
 * flight, the next calls queue up and go together in the following one. So a gateway calling
 * publish() once per request gets batching without a linger timer, and there is only ever one
 * request in flight, which is what the idempotent producer needs (kafkajs also locks per broker).
 */
class KafkaUsagePublisher implements UsagePublisher {
  private readonly kafka: Kafka;
  private readonly topic: string;
  private readonly namespace: string;
  private readonly maxBatchSize: number;
  private readonly maxBatchBytes: number;
  private readonly clock: () => Date;
  private producer: Promise<Producer> | null = null;
  private readonly queue: Outbound[] = [];
  private sending = false;
  private idle: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(options: UsagePublisherOptions) {
    this.kafka = new Kafka({ ...options.kafkaConfig, brokers: options.brokers, clientId: options.clientId ?? 'tokenmeter-gateway-client' });
    this.topic = options.topic ?? USAGE_TOPIC;
    this.namespace = options.eventIdNamespace ?? EVENT_ID_NAMESPACE;
    this.maxBatchSize = options.maxBatchSize ?? 1000;
    this.maxBatchBytes = options.maxBatchBytes ?? 900_000;
    this.clock = options.clock ?? (() => new Date());
    if (!(this.maxBatchSize >= 1) || !(this.maxBatchBytes >= 1)) throw new RangeError('maxBatchSize and maxBatchBytes must be at least 1');
  }

  async publish(event: UsageEventInput): Promise<PublishResult> {
    return (await this.publishMany([event]))[0];
  }

  publishMany(events: readonly UsageEventInput[]): Promise<PublishResult[]> {
    if (this.closed) return Promise.reject(new Error('the usage publisher is closed'));
    const now = this.clock();
    const call = new PendingCall(events.length);
    events.forEach((event, index) => {
      const prepared = prepareUsageMessage(event, now, this.namespace);
      if (!prepared.ok) {
        const { code, reason, eventId } = prepared.rejection;
        call.results[index] = { status: 'rejected', eventId, code, reason };
        return;
      }
      const { message } = prepared;
      call.enqueued();
      this.queue.push({ message, bytes: Buffer.byteLength(message.value) + Buffer.byteLength(message.key) + RECORD_OVERHEAD_BYTES, call, index });
    });
    call.sealed();
    this.startSending();
    return call.done;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
    const producer = this.producer;
    this.producer = null;
    if (producer) await (await producer.catch(() => null))?.disconnect();
  }

  private startSending(): void {
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    this.idle = this.sendQueued();
  }

  private async sendQueued(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.sendBatch(this.queue.splice(0, this.nextBatchLength()));
    } finally {
      // Reached with no await after the last look at the queue, so a call queued meanwhile is never stranded.
      this.sending = false;
    }
  }

  private nextBatchLength(): number {
    let bytes = this.queue[0].bytes;
    let n = 1;
    while (n < this.queue.length && n < this.maxBatchSize && bytes + this.queue[n].bytes <= this.maxBatchBytes) bytes += this.queue[n++].bytes;
    return n;
  }

  private async sendBatch(batch: Outbound[]): Promise<void> {
    try {
      const producer = await this.connected();
      const messages = batch.map((o) => ({ key: o.message.key, value: o.message.value }));
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic: this.topic, messages }] });
    } catch (error) {
      await this.discardProducer();
      for (const o of batch) o.call.unacknowledged(o.index, o.message, error);
      return;
    }
    for (const o of batch) o.call.acknowledged(o.index, o.message);
  }

  private connected(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // Murmur2 of the key modulo the partition count, as the Java client: the partition of an
        // account does not depend on which client published it.
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      this.producer = producer.connect().then(() => producer);
    }
    return this.producer;
  }

  /**
   * After a failed send the producer is replaced, not reused: kafkajs rolls its sequence numbers
   * back when it gives up, and if the broker had in fact written the batch, the next batch would
   * reuse those numbers and could be taken for a duplicate of it and dropped. A new producer gets
   * a new producer id, so sequences start over.
   */
  private async discardProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    if (producer) await (await producer.catch(() => null))?.disconnect().catch(() => undefined);
  }
}
