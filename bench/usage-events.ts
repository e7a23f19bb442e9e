/** Realistic gateway usage events for the benchmarks, deterministic (the same i gives the same event). */
import type { Kafka } from 'kafkajs';

const MODELS = ['deepseek-r1', 'deepseek-r1', 'deepseek-r1', 'deepseek-v3', 'gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4'];

/** Deterministic pseudo-random in [0, 1) from an integer (no Math.random: runs are repeatable). */
function rand(i: number, salt: number): number {
  let x = (i * 2_654_435_761 + salt * 40_503) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x45d9f3b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 4_294_967_296;
}

/**
 * A realistic gateway event, as the gateway publishes them in real time: occurred_at increases
 * (with up to a few seconds of jitter, so some arrive out of order) over WINDOW_MS; traffic is
 * skewed (a few heavy accounts send most requests, as with real API customers); each account uses
 * one to three API keys and mostly one or two models; usage comes in the provider's own shape.
 */
export const WINDOW_MS = 6 * 3_600_000;
export function makeEvent(i: number, windowStart: number, events: number, accounts: number): { key: string; value: string } {
  const accountN = Math.floor(accounts * rand(i, 1) ** 3);
  const account = `acct_${accountN}`;
  const model = MODELS[(accountN + (rand(i, 2) < 0.8 ? 0 : 1 + Math.floor(rand(i, 3) * 6))) % MODELS.length];
  const prompt = 200 + Math.floor(rand(i, 4) * 6000);
  const cached = Math.floor(prompt * rand(i, 5) * 0.6);
  const completion = 50 + Math.floor(rand(i, 6) * 2000);
  let usage: Record<string, unknown>;
  if (model.startsWith('deepseek')) {
    usage = { prompt_tokens: prompt, completion_tokens: completion, prompt_cache_hit_tokens: cached, prompt_cache_miss_tokens: prompt - cached, completion_tokens_details: { reasoning_tokens: Math.floor(completion / 2) } };
  } else if (model.startsWith('gpt')) {
    usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
  } else {
    usage = { input_tokens: prompt - cached, output_tokens: completion, cache_read_input_tokens: cached, cache_creation_input_tokens: i % 5 === 0 ? 1024 : 0 };
  }
  const jitterMs = Math.floor(rand(i, 7) * 3000);
  const event = {
    event_id: `evt_bench_${i}`,
    occurred_at: new Date(windowStart + Math.floor((i / events) * WINDOW_MS) - jitterMs).toISOString(),
    account_id: account,
    api_key_id: `key_${account}_${Math.floor(rand(i, 8) * (1 + (accountN % 3)))}`,
    model,
    request_id: `req_${i}`,
    usage,
    metadata: { region: rand(i, 9) < 0.5 ? 'eu-west-1' : 'us-east-1' },
  };
  return { key: account, value: JSON.stringify(event) };
}

/** Share of events published twice, as a gateway retrying a publish would produce. */
export const DUPLICATE_RATE = 0.05;

/**
 * The messages for events [from, to) of a run of `events`, in publish order: each event once,
 * and DUPLICATE_RATE of them (the same ones in every run) a second time right after.
 */
export function eventMessages(from: number, to: number, windowStart: number, events: number, accounts: number): { key: string; value: string }[] {
  const messages = [];
  for (let j = from; j < to; j++) {
    messages.push(makeEvent(j, windowStart, events, accounts));
    if ((j * 2_246_822_519) % 1000 < DUPLICATE_RATE * 1000) messages.push(makeEvent(j, windowStart, events, accounts));
  }
  return messages;
}

/**
 * Creates `topic` (and its `.dlq`, which the ingestor publishes to) and publishes `events` events
 * to it the way a gateway does, with DUPLICATE_RATE of them delivered twice. Returns the number of
 * messages sent (events + redeliveries).
 */
export async function publishEvents(
  kafka: Kafka,
  topic: string,
  options: { events: number; partitions: number; accounts: number; log: (msg: string) => void },
): Promise<number> {
  const { events, partitions, accounts, log } = options;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }, { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 }] });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const windowStart = Date.now() - WINDOW_MS - 60_000;
  // A send is one record batch per partition; keep each well under the broker's 1 MB message limit
  // even with few partitions.
  const batch = 1000;
  let sent = 0;
  let lastReport = Date.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < events; i += batch) {
    const messages = eventMessages(i, Math.min(events, i + batch), windowStart, events, accounts);
    sent += messages.length;
    inflight.push(producer.send({ topic, acks: 1, messages }));
    if (inflight.length >= 4) await inflight.shift();
    if (Date.now() - lastReport > 2000) {
      log(`published ${Math.min(events, i + batch)} / ${events} events`);
      lastReport = Date.now();
    }
  }
  await Promise.all(inflight);
  await producer.disconnect();
  return sent;
}
