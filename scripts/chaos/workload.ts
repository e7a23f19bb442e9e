/**
 * The known message set a chaos case publishes, and a paced publisher that keeps going through
 * broker outages (as a gateway with a local buffer would).
 *
 * The set: N realistic events from the benchmarks' generator (bench/usage-events.ts, with its 5%
 * redeliveries), plus
 * - malformed messages of every kind the contract rejects (bad JSON, a tombstone, schema,
 *   invariant, too far in the future), some of them published twice: they must each end up in
 *   `rejected_events` and on the DLQ;
 * - conflicts: an event_id already published, re-published later with different usage (and so a
 *   different payload hash and cost), some twice: the first one stands, each distinct payload
 *   is recorded once in `event_conflicts`.
 */
import type { Kafka, Message } from 'kafkajs';
import { eventBatch, WINDOW_MS } from '../../bench/usage-events';

export type Expect = 'valid' | 'conflict' | 'invalid_json' | 'schema' | 'invariant' | 'too_far_in_future';

export interface PlannedMessage {
  key: string | null;
  value: string | null;
  /** What the harness means it to be (checked against the parser before anything is asserted). */
  expect: Expect;
}

/** Every MALFORMED_EVERY-th message slot gets a malformed message; every CONFLICT_EVERY-th event a conflict. */
const MALFORMED_EVERY = 250;
const CONFLICT_EVERY = 300;
/** A conflict is published this many messages after its original (so long after the original's send was acknowledged). */
const CONFLICT_DELAY = 2500;

function malformed(n: number): PlannedMessage {
  const id = `evt_chaos_bad_${n}`;
  const key = `acct_bad_${n % 7}`;
  switch (n % 6) {
    case 0:
      return { key, value: `{"event_id":"${id}","occurred_at":`, expect: 'invalid_json' };
    case 1:
      return { key, value: null, expect: 'invalid_json' };
    case 2: // no model
      return { key, value: JSON.stringify({ event_id: id, occurred_at: new Date().toISOString(), account_id: key, usage: { input_tokens: 1, output_tokens: 1 } }), expect: 'schema' };
    case 3: // DeepSeek shape whose hit + miss is not the prompt
      return {
        key,
        value: JSON.stringify({
          event_id: id,
          occurred_at: new Date(Date.now() - 60_000).toISOString(),
          account_id: key,
          model: 'deepseek-r1',
          usage: { prompt_tokens: 100, completion_tokens: 10, prompt_cache_hit_tokens: 50, prompt_cache_miss_tokens: 40 },
        }),
        expect: 'invariant',
      };
    case 4:
      return {
        key,
        value: JSON.stringify({ event_id: id, occurred_at: new Date(Date.now() + 86_400_000).toISOString(), account_id: key, model: 'gpt-4o', usage: { input_tokens: 10, output_tokens: 10 } }),
        expect: 'too_far_in_future',
      };
    default: // negative tokens
      return { key, value: JSON.stringify({ event_id: id, occurred_at: new Date().toISOString(), account_id: key, model: 'gpt-4o', usage: { input_tokens: -5, output_tokens: 1 } }), expect: 'invariant' };
  }
}

/** The same event with one more output token: same id and account (so the same partition), other payload and cost. */
function conflicting(original: { key: string; value: string }, extra: number): PlannedMessage {
  const event = JSON.parse(original.value) as { usage: Record<string, number>; request_id?: string };
  const u = event.usage;
  if ('completion_tokens' in u) u.completion_tokens += extra;
  else u.output_tokens += extra;
  return { key: original.key, value: JSON.stringify(event), expect: 'conflict' };
}

/**
 * The benchmark events for event i, as raw messages: this publisher interleaves them with bytes
 * the gateway client would refuse to send (tombstones, malformed JSON), so it sends bytes itself.
 */
function eventMessages(i: number, windowStart: number, events: number, accounts: number): { key: string; value: string }[] {
  return eventBatch(i, i + 1, windowStart, events, accounts).map((e) => ({ key: e.account_id, value: JSON.stringify(e) }));
}

/** The whole message sequence, in publish order. */
export function planMessages(events: number, accounts: number): PlannedMessage[] {
  const windowStart = Date.now() - WINDOW_MS - 60_000;
  const out: PlannedMessage[] = [];
  const pendingConflicts: { at: number; message: PlannedMessage }[] = [];
  let bad = 0;
  for (let i = 0; i < events; i++) {
    for (const m of eventMessages(i, windowStart, events, accounts)) out.push({ ...m, expect: 'valid' });
    if (i % CONFLICT_EVERY === CONFLICT_EVERY - 1) {
      const original = eventMessages(i, windowStart, events, accounts)[0];
      pendingConflicts.push({ at: out.length + CONFLICT_DELAY, message: conflicting(original, 1) });
      // Every third conflict is itself redelivered: still one event_conflicts row for it.
      if (i % (3 * CONFLICT_EVERY) === CONFLICT_EVERY - 1) pendingConflicts.push({ at: out.length + CONFLICT_DELAY + 1, message: conflicting(original, 1) });
    }
    while (pendingConflicts.length > 0 && pendingConflicts[0].at <= out.length) out.push(pendingConflicts.shift()!.message);
    if (out.length % MALFORMED_EVERY === 0) {
      const m = malformed(bad++);
      out.push(m);
      if (bad % 5 === 0) out.push({ ...m }); // a malformed message redelivered: rejected (and dead-lettered) at both offsets
    }
  }
  for (const c of pendingConflicts) out.push(c.message);
  return out;
}

export interface PublisherState {
  /** Messages acknowledged by the broker (acks=all). */
  acked: number;
  total: number;
  failedSends: number;
  done: boolean;
  /** When the last batch was acknowledged (ms epoch). */
  finishedAt: number;
}

/**
 * Publishes `messages` at `ratePerS`, in order, one batch at a time (a batch is sent only after
 * the previous one was acknowledged, so order within a partition is publish order). A failed send
 * (the broker is down) is retried until it succeeds; when behind schedule it catches up as fast
 * as the broker takes it, like a gateway draining its buffer.
 */
export function publishPaced(
  kafka: Kafka,
  topic: string,
  messages: PlannedMessage[],
  ratePerS: number,
  log: (msg: string) => void,
): { state: PublisherState; finished: Promise<void> } {
  const state: PublisherState = { acked: 0, total: messages.length, failedSends: 0, done: false, finishedAt: 0 };
  const finished = (async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 } });
    await connectWithRetry(() => producer.connect(), log);
    const started = Date.now();
    let outage = false;
    while (state.acked < messages.length) {
      const due = Math.min(messages.length, Math.floor(((Date.now() - started) / 1000) * ratePerS));
      if (due <= state.acked) {
        await sleep(20);
        continue;
      }
      const batch = messages.slice(state.acked, Math.min(due, state.acked + 500));
      try {
        await producer.send({ topic, acks: -1, messages: batch.map((m): Message => ({ key: m.key, value: m.value })) });
        state.acked += batch.length;
        if (outage) log(`publisher: sending again (${state.acked} acknowledged)`);
        outage = false;
      } catch (err) {
        state.failedSends++;
        if (!outage) log(`publisher: send failed (${(err as Error).message}); retrying the same batch until the broker takes it`);
        outage = true;
        await sleep(250);
      }
    }
    state.done = true;
    state.finishedAt = Date.now();
    await producer.disconnect().catch(() => undefined);
  })();
  return { state, finished };
}

async function connectWithRetry(connect: () => Promise<void>, log: (msg: string) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await connect();
      return;
    } catch (err) {
      if (attempt >= 60) throw err;
      if (attempt === 1) log(`publisher: connect failed (${(err as Error).message}); retrying`);
      await sleep(500);
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
