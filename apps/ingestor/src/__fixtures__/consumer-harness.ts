import type { EachBatchPayload, Kafka, KafkaMessage, ProducerRecord } from 'kafkajs';
import { createLogger } from '@tokenmeter/config';
import type { RecordBatchInput, StoredOutcome, UsageEventsRepository } from '@tokenmeter/db';
import { toPricingContext, UsageIngestor, type PriceBookCache } from '@tokenmeter/ingest';
import { type ChunkCommitted, UsageConsumer, type UsageConsumerOptions } from '../usage-consumer';

/**
 * The UsageConsumer with the real UsageIngestor (parse, validate, price, build rows) over a
 * scripted repository, and kafkajs replaced by fakes: the database and broker faults these specs
 * need (refusing one event for good, going away mid-chunk) cannot be provoked on demand in a real
 * Postgres or broker. Everything that happens is written to one ordered `log`, so a spec can say
 * what happened in which order (dead letter before the commit, no resolve after a pause).
 */

export const TOPIC = 'gateway.usage.v1';
export const DLQ_TOPIC = 'gateway.usage.v1.dlq';
export const PARTITION = 3;

/** What the scripted database does with one recordBatch call: store it, or throw. */
export type Script = (input: RecordBatchInput) => Error | undefined;

export interface Harness {
  sut: UsageConsumer;
  /** Ordered: `record ...`, `refused ...`, `dlq ...`, `resolve <offset>`, `commit`, `heartbeat`, `pause`, `resume`. */
  log: string[];
  /** Every recordBatch the database accepted. */
  stored: RecordBatchInput[];
  /** Every record sent to the dead-letter topic. */
  deadLetters: ProducerRecord[];
  committed: ChunkCommitted[];
  /** Hands a batch to the consumer the way kafkajs' run loop does. */
  deliver(payload: EachBatchPayload): Promise<void>;
  /** Makes the next producer.send calls throw this (a broker outage), until set to undefined. */
  failDeadLetters(err: Error | undefined): void;
}

export async function startConsumer(script: Script, options: Partial<UsageConsumerOptions> = {}): Promise<Harness> {
  const log: string[] = [];
  const stored: RecordBatchInput[] = [];
  const deadLetters: ProducerRecord[] = [];
  const committed: ChunkCommitted[] = [];
  let dlqFailure: Error | undefined;
  let eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;

  const consumer = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    subscribe: async () => undefined,
    on: () => () => undefined,
    events: { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' },
    run: async (config: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) => {
      eachBatch = config.eachBatch;
    },
  };
  const producer = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    send: async (record: ProducerRecord) => {
      if (dlqFailure) throw dlqFailure;
      deadLetters.push(record);
      log.push(`dlq ${record.messages.map((m) => `${m.headers?.['x-original-offset']}:${m.headers?.['x-reject-code']}`).join(',')}`);
      return [];
    },
  };
  const kafka = { consumer: () => consumer, producer: () => producer } as unknown as Kafka;

  const repository = {
    recordBatch: async (input: RecordBatchInput): Promise<StoredOutcome[]> => {
      const what = describe(input);
      const err = script(input);
      if (err) {
        log.push(`refused ${what}`);
        throw err;
      }
      log.push(`record ${what}`);
      stored.push(input);
      return input.events.map(() => 'inserted' as const);
    },
  } as unknown as UsageEventsRepository;
  // No prices: every event is stored unpriced, which is all these specs need of pricing.
  const emptyBook = toPricingContext({ versions: [], models: [], overrides: [], revision: 'empty' });
  const priceBooks = { current: async () => emptyBook } as unknown as PriceBookCache;
  const ingestor = new UsageIngestor(repository, priceBooks, () => new Date('2026-12-01T00:00:00Z'));

  const sut = new UsageConsumer(
    kafka,
    ingestor,
    { topic: TOPIC, dlqTopic: DLQ_TOPIC, groupId: 'spec', onChunkCommitted: (c) => committed.push(c), ...options },
    createLogger('usage-consumer-spec', 'silent'),
  );
  await sut.start();
  return {
    sut,
    log,
    stored,
    deadLetters,
    committed,
    deliver: (payload) => eachBatch!(payload),
    failDeadLetters: (err) => {
      dlqFailure = err;
    },
  };
}

/** `e1,e2 | rejected storage_error@11 | next 12`: the events, the rejections and the progress of one write. */
function describe(input: RecordBatchInput): string {
  const parts = [input.events.map((e) => e.eventId).join(',') || '-'];
  if (input.rejected.length > 0) parts.push(`rejected ${input.rejected.map((r) => `${r.reasonCode}@${r.offset}`).join(',')}`);
  parts.push(`next ${input.progress.map((p) => p.nextOffset).join(',')}`);
  return parts.join(' | ');
}

export function aKafkaMessage(offset: number, value: string, key = 'acct_spec'): KafkaMessage {
  // A v2 record batch entry (kafkajs' KafkaMessage union), the shape brokers >= 0.11 send.
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    offset: String(offset),
    timestamp: '0',
    attributes: 0,
    headers: {},
  };
}

export interface BatchControls {
  /** isStale() answers this, asked before each chunk. */
  stale?: () => boolean;
  /** Messages the partition holds past the batch's last one (for the lag figure). */
  behind?: number;
}

/** An EachBatchPayload as kafkajs hands it to eachBatch (autoResolve off), writing what the consumer does to `log`. */
export function aBatch(log: string[], messages: KafkaMessage[], controls: BatchControls = {}): EachBatchPayload {
  const last = Number(messages[messages.length - 1].offset);
  return {
    batch: {
      topic: TOPIC,
      partition: PARTITION,
      highWatermark: String(last + 1 + (controls.behind ?? 0)),
      messages,
    },
    resolveOffset: (offset: string) => log.push(`resolve ${offset}`),
    commitOffsetsIfNecessary: async () => {
      log.push('commit');
    },
    uncommittedOffsets: () => ({ topics: [] }),
    heartbeat: async () => {
      log.push('heartbeat');
    },
    pause: () => {
      log.push('pause');
      return () => log.push('resume');
    },
    isRunning: () => true,
    isStale: controls.stale ?? (() => false),
  } as unknown as EachBatchPayload;
}
