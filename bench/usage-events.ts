/**
 * Realistic gateway usage events, deterministic (the same inputs give the same event), published
 * to Kafka the way a gateway does: through libs/gateway-client. Used by the benchmarks and by
 * `npm run demo` (scripts/demo-traffic.ts), which shapes its own traffic from the same parts.
 */
import { logLevel, type Kafka } from 'kafkajs';
import { createUsagePublisher, type UsageEventInput } from '@tokenmeter/gateway-client';
import { createTopicsAndWait } from '@tokenmeter/ingest';

const MODELS = ['deepseek-r1', 'deepseek-r1', 'deepseek-r1', 'deepseek-v3', 'gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4'];

/**
 * Deterministic pseudo-random in [0, 1) from an integer (no Math.random: runs are repeatable).
 * Only for i < ~3e6 (i * 2654435761 must stay exact in a double); kept unchanged so benchmark
 * runs stay comparable with the recorded results. randomUnit takes any integers.
 */
function rand(i: number, salt: number): number {
  let x = (i * 2_654_435_761 + salt * 40_503) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x45d9f3b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 4_294_967_296;
}

/** Deterministic pseudo-random in [0, 1) from any integers below 2^53 (each is mixed in 32 bits at a time). */
export function randomUnit(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < parts.length; i++) {
    const low = parts[i] >>> 0;
    const high = Math.floor(parts[i] / 4_294_967_296) >>> 0;
    h = Math.imul(h ^ low, 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    h = Math.imul(h ^ high, 0x01000193);
    h = Math.imul(h ^ (h >>> 12), 0x2c1b3c6d);
  }
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return ((h ^ (h >>> 16)) >>> 0) / 4_294_967_296;
}

/** The four usage shapes of the event contract (docs/event-contract.md). */
export type UsageShape = 'openai' | 'deepseek' | 'anthropic' | 'canonical';

/** One request's tokens in Tokenmeter's disjoint buckets; reasoning is part of output. */
export interface UsageCounts {
  uncachedInput: number;
  cacheRead: number;
  cacheWrite: number;
  output: number;
  reasoning: number;
}

/**
 * The usage object a provider reports for `counts`, in its own shape: what the gateway forwards.
 * OpenAI and DeepSeek count cached tokens inside prompt_tokens and report no cache writes
 * (counts.cacheWrite must be 0 for them); Anthropic reports input without cache reads and writes.
 */
export function providerUsage(shape: UsageShape, c: UsageCounts): Record<string, unknown> {
  const prompt = c.uncachedInput + c.cacheRead;
  switch (shape) {
    case 'deepseek':
      return {
        prompt_tokens: prompt,
        completion_tokens: c.output,
        prompt_cache_hit_tokens: c.cacheRead,
        prompt_cache_miss_tokens: c.uncachedInput,
        completion_tokens_details: { reasoning_tokens: c.reasoning },
      };
    case 'openai':
      return {
        prompt_tokens: prompt,
        completion_tokens: c.output,
        total_tokens: prompt + c.output,
        prompt_tokens_details: { cached_tokens: c.cacheRead },
        ...(c.reasoning > 0 ? { completion_tokens_details: { reasoning_tokens: c.reasoning } } : {}),
      };
    case 'anthropic':
      return { input_tokens: c.uncachedInput, output_tokens: c.output, cache_read_input_tokens: c.cacheRead, cache_creation_input_tokens: c.cacheWrite };
    case 'canonical':
      return {
        input_tokens: c.uncachedInput,
        output_tokens: c.output,
        cache_read_tokens: c.cacheRead,
        cache_write_tokens: c.cacheWrite,
        reasoning_tokens: c.reasoning,
      };
  }
}

/** The shape each provider's usage comes in (the gateway forwards it unchanged). */
export function shapeOfModel(model: string): UsageShape {
  if (model.startsWith('deepseek')) return 'deepseek';
  if (model.startsWith('gpt')) return 'openai';
  return 'anthropic';
}

/**
 * A realistic gateway event, as the gateway publishes them in real time: occurred_at increases
 * (with up to a few seconds of jitter, so some arrive out of order) over WINDOW_MS; traffic is
 * skewed (a few heavy accounts send most requests, as with real API customers); each account uses
 * one to three API keys and mostly one or two models; usage comes in the provider's own shape.
 */
export const WINDOW_MS = 6 * 3_600_000;
export type BenchEvent = UsageEventInput & { event_id: string; account_id: string };
export function makeEvent(i: number, windowStart: number, events: number, accounts: number): BenchEvent {
  const accountN = Math.floor(accounts * rand(i, 1) ** 3);
  const account = `acct_${accountN}`;
  const model = MODELS[(accountN + (rand(i, 2) < 0.8 ? 0 : 1 + Math.floor(rand(i, 3) * 6))) % MODELS.length];
  const prompt = 200 + Math.floor(rand(i, 4) * 6000);
  const cached = Math.floor(prompt * rand(i, 5) * 0.6);
  const completion = 50 + Math.floor(rand(i, 6) * 2000);
  const shape = shapeOfModel(model);
  const usage = providerUsage(shape, {
    uncachedInput: prompt - cached,
    cacheRead: cached,
    cacheWrite: shape === 'anthropic' && i % 5 === 0 ? 1024 : 0,
    output: completion,
    reasoning: shape === 'deepseek' ? Math.floor(completion / 2) : 0,
  });
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
  return event;
}

/** Share of events published twice, as a gateway retrying a publish would produce. */
export const DUPLICATE_RATE = 0.05;

/** Events per publishMany call (the publisher's own produce requests are at most 1000 events too). */
export const SEND_BATCH = 1000;

/**
 * Publishes batches of events to `topic` (which must exist) through libs/gateway-client and waits
 * for every acknowledgement; up to four calls outstanding, so the publisher always has the next
 * batch queued. An event listed twice is sent twice (a redelivery). Returns the number of messages
 * sent; throws if the publisher refused any event or the broker did not take one. Batches are
 * consumed lazily, so a generator can build a large backlog without holding it all in memory.
 */
export async function sendInBatches(
  to: { brokers: string[]; topic: string; clientId?: string },
  batches: Iterable<UsageEventInput[]>,
): Promise<number> {
  const publisher = createUsagePublisher({ clientId: 'tokenmeter-bench', ...to, kafkaConfig: { logLevel: logLevel.NOTHING } });
  try {
    let sent = 0;
    const inflight: Promise<unknown>[] = [];
    const published = async (events: UsageEventInput[]) => {
      const refused = (await publisher.publishMany(events)).find((r) => r.status === 'rejected');
      if (refused) throw new Error(`the publisher refused an event: ${JSON.stringify(refused)}`);
    };
    for (const events of batches) {
      sent += events.length;
      inflight.push(published(events));
      if (inflight.length >= 4) await inflight.shift();
    }
    await Promise.all(inflight);
    return sent;
  } finally {
    await publisher.close();
  }
}

/**
 * Events [from, to) of a run of `events`, in publish order: each event once, and DUPLICATE_RATE
 * of them (the same ones in every run) a second time right after.
 */
export function eventBatch(from: number, to: number, windowStart: number, events: number, accounts: number): BenchEvent[] {
  const messages: BenchEvent[] = [];
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
  options: { brokers: string[]; events: number; partitions: number; accounts: number; log: (msg: string) => void },
): Promise<number> {
  const { brokers, events, partitions, accounts, log } = options;
  const admin = kafka.admin();
  await admin.connect();
  await createTopicsAndWait(admin, [{ topic, numPartitions: partitions, replicationFactor: 1 }, { topic: `${topic}.dlq`, numPartitions: 1, replicationFactor: 1 }]);
  await admin.disconnect();
  const windowStart = Date.now() - WINDOW_MS - 60_000;
  function* batches(): Generator<BenchEvent[]> {
    let lastReport = Date.now();
    for (let i = 0; i < events; i += SEND_BATCH) {
      yield eventBatch(i, Math.min(events, i + SEND_BATCH), windowStart, events, accounts);
      if (Date.now() - lastReport > 2000) {
        log(`published ${Math.min(events, i + SEND_BATCH)} / ${events} events`);
        lastReport = Date.now();
      }
    }
  }
  return sendInBatches({ brokers, topic }, batches());
}
