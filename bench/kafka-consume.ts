/**
 * The floor under the ingestor: what kafkajs alone costs per message, with nothing done to it.
 *
 *   npm run bench:kafka-consume -- --events 500000 [--partitions 6]
 *
 * Publishes N benchmark events to a fresh topic exactly as bench:ingest does (publishEvents: the
 * same events and 5% redeliveries), then reads the whole backlog twice with a fresh consumer group
 * each time, using the ingestor's consumer settings (eachBatch, 6 partitions in flight, 4 MiB per partition, 16 MiB per fetch, no
 * Postgres): once doing nothing with the messages ("consume"), once decoding and JSON.parse-ing
 * each value ("consume_parse"). Prints messages/s and this process's CPU time per message (user +
 * system, all threads) measured after the first tenth of the backlog.
 */
import { Kafka, logLevel } from 'kafkajs';
import { publishEvents } from './usage-events';
import { numberArg } from './args';

const EVENTS = numberArg('events', 500_000);
// A fetch returns up to 16 MiB (~35,000 of these messages): fewer than ~200,000 leaves too few
// fetch rounds after the first tenth for a rate to mean anything.
const MIN_EVENTS = 200_000;
const PARTITIONS = numberArg('partitions', 6);
const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const log = (msg: string) => process.stderr.write(`[bench:kafka-consume] ${msg}\n`);

async function consume(kafka: Kafka, topic: string, messages: number, parse: boolean): Promise<{ messagesPerS: number; cpuUsPerMessage: number }> {
  const consumer = kafka.consumer({ groupId: `${topic}.${parse ? 'parse' : 'none'}`, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 16 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let keptLength = 0;
  let start: { at: number; cpu: NodeJS.CpuUsage; seen: number } | null = null;
  const result = await new Promise<{ messagesPerS: number; cpuUsPerMessage: number }>((resolve, reject) => {
    consumer
      .run({
        partitionsConsumedConcurrently: 6,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          if (parse) {
            for (const m of batch.messages) keptLength += (JSON.parse(m.value!.toString('utf8')) as { event_id: string }).event_id.length;
          }
          resolveOffset(batch.lastOffset());
          seen += batch.messages.length;
          if (start === null && seen >= messages / 10) start = { at: performance.now(), cpu: process.cpuUsage(), seen };
          if (start !== null && seen >= messages) {
            const cpu = process.cpuUsage(start.cpu);
            const n = seen - start.seen;
            resolve({
              messagesPerS: Math.round((n * 1000) / (performance.now() - start.at)),
              cpuUsPerMessage: Math.round(((cpu.user + cpu.system) / n) * 100) / 100,
            });
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  if (parse && keptLength === 0) throw new Error('parsed nothing');
  return result;
}

async function main(): Promise<void> {
  if (EVENTS < MIN_EVENTS) throw new Error(`--events must be at least ${MIN_EVENTS} for a meaningful rate`);
  const kafka = new Kafka({ clientId: 'tokenmeter-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const topic = `bench.consume.${Date.now().toString(36)}`;
  const messages = await publishEvents(kafka, topic, { brokers: BROKERS, events: EVENTS, partitions: PARTITIONS, accounts: 2000, log });
  const bare = await consume(kafka, topic, messages, false);
  log(`consume: ${JSON.stringify(bare)}`);
  const parsed = await consume(kafka, topic, messages, true);
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] });
  await admin.disconnect();
  console.log(
    JSON.stringify({
      events: EVENTS,
      messages,
      consume_messages_per_s: bare.messagesPerS,
      consume_cpu_us_per_message: bare.cpuUsPerMessage,
      consume_parse_messages_per_s: parsed.messagesPerS,
      consume_parse_cpu_us_per_message: parsed.cpuUsPerMessage,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
