/**
 * The traffic `npm run demo` publishes: a few weeks of one gateway's usage for a handful of
 * accounts, as plain data (no Kafka, no database). Deterministic in absolute time: the events of a
 * given (account, UTC hour) are a function of those two alone, never of when the demo runs. So a
 * second run re-publishes the very same events (same event_id, same payload: duplicates, not
 * conflicts) and only adds the hours that have passed since.
 */
import { providerUsage, randomUnit, shapeOfModel, type UsageCounts, type UsageShape } from '../bench/usage-events';
import { DEMO_ACCOUNTS, MODEL_PROFILES } from './demo-accounts';

const HOUR_MS = 3_600_000;

// Relative activity by local hour of a working day: a night trough, a morning ramp, a lunch dip.
const OFFICE_HOURS = [0.05, 0.04, 0.03, 0.03, 0.04, 0.06, 0.12, 0.3, 0.6, 0.9, 1, 1, 0.75, 0.85, 1, 0.95, 0.85, 0.65, 0.4, 0.3, 0.25, 0.18, 0.12, 0.08];

/** How busy an account is in one UTC hour (any positive scale; only ratios matter). */
function activity(accountIndex: number, hour: number): number {
  const account = DEMO_ACCOUNTS[accountIndex];
  const local = new Date((hour + account.utcOffsetHours) * HOUR_MS);
  const localHour = local.getUTCHours();
  const weekend = local.getUTCDay() === 0 || local.getUTCDay() === 6;
  const day = Math.floor((hour + account.utcOffsetHours) / 24);
  let base: number;
  switch (account.pattern) {
    case 'office':
      base = OFFICE_HOURS[localHour] * (weekend ? 0.2 : 1);
      break;
    case 'support':
      base = (0.3 + 0.7 * OFFICE_HOURS[localHour]) * (weekend ? 0.65 : 1);
      break;
    case 'batch':
      // Jobs run 01:00-05:00 every night, a bigger one on Sunday; notebooks trickle by day.
      base = localHour >= 1 && localHour < 5 ? (local.getUTCDay() === 0 ? 1.8 : 1) : 0.06;
      break;
  }
  // Day-to-day and hour-to-hour variation, so no two days look the same.
  const dayNoise = 0.8 + 0.4 * randomUnit(accountIndex, day, 1);
  const hourNoise = 0.75 + 0.5 * randomUnit(accountIndex, hour, 2);
  return account.volume * base * dayNoise * hourNoise;
}

/**
 * Splits `total` events over the (account, hour) cells in proportion to their activity, exactly
 * (largest remainder), so the demo publishes what was asked for.
 */
function allocate(total: number, firstHour: number, hours: number): Int32Array {
  const cells = DEMO_ACCOUNTS.length * hours;
  const weights = new Float64Array(cells);
  let sum = 0;
  for (let a = 0; a < DEMO_ACCOUNTS.length; a++) {
    for (let h = 0; h < hours; h++) {
      weights[a * hours + h] = activity(a, firstHour + h);
      sum += weights[a * hours + h];
    }
  }
  const counts = new Int32Array(cells);
  const remainders: { cell: number; rest: number }[] = [];
  let given = 0;
  for (let c = 0; c < cells; c++) {
    const exact = (total * weights[c]) / sum;
    counts[c] = Math.floor(exact);
    given += counts[c];
    remainders.push({ cell: c, rest: exact - counts[c] });
  }
  remainders.sort((x, y) => y.rest - x.rest || x.cell - y.cell);
  for (let i = 0; i < total - given; i++) counts[remainders[i].cell]++;
  return counts;
}

function pick<T>(options: ReadonlyArray<readonly [T, number]>, u: number): T {
  const sum = options.reduce((s, [, share]) => s + share, 0);
  let at = u * sum;
  for (const [value, share] of options) {
    if (at < share) return value;
    at -= share;
  }
  return options[options.length - 1][0];
}

function logUniform([min, max]: readonly [number, number], u: number): number {
  return Math.round(Math.exp(Math.log(min) + u * (Math.log(max) - Math.log(min))));
}

function hex(u: number): string {
  return Math.floor(u * 4_294_967_296).toString(16).padStart(8, '0');
}

export interface DemoEvent {
  event_id: string;
  occurred_at: string;
  account_id: string;
  api_key_id: string;
  model: string;
  request_id: string;
  usage: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

interface GeneratedEvent {
  event: DemoEvent;
  /** Deterministic per event, for choices made about the event as a whole (redelivered or not). */
  u: (salt: number) => number;
  occurredAtMs: number;
  shape: UsageShape;
  counts: UsageCounts;
}

/** Event n of account `a` in UTC hour `hour` (hours since the epoch): a function of those three only. */
function makeDemoEvent(a: number, hour: number, n: number): GeneratedEvent {
  const u = (salt: number) => randomUnit(a, hour, n, salt);
  const account = DEMO_ACCOUNTS[a];
  const model = pick(account.models, u(1));
  const profile = MODEL_PROFILES[model];
  const prompt = logUniform(profile.prompt, u(2));
  let cacheRead = 0;
  let cacheWrite = 0;
  if (prompt >= profile.cacheMinPrompt && u(3) < profile.cacheHitRate) {
    // A cache hit covers the shared prefix (system prompt, earlier turns): most of a long prompt.
    cacheRead = Math.floor((prompt * (0.3 + 0.65 * u(4))) / profile.cacheUnit) * profile.cacheUnit;
  } else if (prompt >= profile.cacheMinPrompt && u(5) < profile.cacheWriteRate) {
    cacheWrite = Math.floor(prompt * (0.4 + 0.5 * u(6)));
  }
  const reasoning = profile.reasoning ? logUniform(profile.reasoning, u(7)) : 0;
  const counts: UsageCounts = {
    uncachedInput: prompt - cacheRead - cacheWrite,
    cacheRead,
    cacheWrite,
    output: reasoning + logUniform(profile.answer, u(8)),
    reasoning,
  };
  const occurredAtMs = hour * HOUR_MS + Math.floor(u(9) * HOUR_MS);
  const anthropicApi = shapeOfModel(model) === 'anthropic';
  const event: DemoEvent = {
    event_id: `demo-${account.id}-${hour}-${n}`,
    occurred_at: new Date(occurredAtMs).toISOString(),
    account_id: account.id,
    api_key_id: pick(account.apiKeys, u(10)),
    model,
    request_id: anthropicApi ? `msg_${hex(u(11))}${hex(u(12))}` : `chatcmpl-${hex(u(11))}${hex(u(12))}`,
    usage: providerUsage(profile.shape, counts),
    metadata: {
      route: anthropicApi ? '/v1/messages' : '/v1/chat/completions',
      stream: u(13) < 0.7,
      region: account.utcOffsetHours < -2 ? 'us-east-1' : account.utcOffsetHours > 3 ? 'ap-south-1' : 'eu-west-1',
    },
  };
  return { event, u, occurredAtMs, shape: profile.shape, counts };
}

/** Share of events the gateway publishes twice (a retried publish): the ingestor must count them once. */
export const DEMO_DUPLICATE_RATE = 0.015;

export type MalformedCode = 'invalid_json' | 'schema' | 'invariant' | 'metadata_too_large' | 'too_far_in_future';

/** A message the ingestor must reject, with the code it must give (docs/event-contract.md). */
interface Malformed {
  code: MalformedCode;
  /** What a gateway bug like this looks like, for the reader of the rejected-events page. */
  what: string;
  value: (neighbour: DemoEvent, nowMs: number) => string;
}

/** An otherwise valid event with `patch` applied. */
function broken(code: MalformedCode, what: string, patch: (e: DemoEvent, nowMs: number) => Record<string, unknown>): Malformed {
  return { code, what, value: (e, nowMs) => JSON.stringify({ ...e, ...patch(e, nowMs) }) };
}

const MALFORMED: readonly Malformed[] = [
  { code: 'invalid_json', what: 'a gateway crashed mid-write', value: (e) => JSON.stringify({ ...e, event_id: 'demo-bad-truncated' }).slice(0, 120) },
  broken('schema', 'occurred_at without a timezone', (e) => ({ event_id: 'demo-bad-no-timezone', occurred_at: e.occurred_at.replace('Z', '') })),
  broken('schema', 'a field that is not in v1', () => ({ event_id: 'demo-bad-unknown-field', cost_usd: '0.0123' })),
  broken('schema', 'OpenAI Responses API usage (would double-charge cache reads)', () => ({
    event_id: 'demo-bad-responses-api',
    model: 'gpt-4o',
    usage: { input_tokens: 2000, input_tokens_details: { cached_tokens: 1500 }, output_tokens: 300, output_tokens_details: { reasoning_tokens: 0 } },
  })),
  broken('schema', 'an account id with spaces', () => ({ event_id: 'demo-bad-account-id', account_id: 'Northwind Analytics' })),
  broken('invariant', 'DeepSeek cache hit + miss not equal to prompt_tokens', () => ({
    event_id: 'demo-bad-deepseek-sum',
    model: 'deepseek-r1',
    usage: { prompt_tokens: 1000, completion_tokens: 500, prompt_cache_hit_tokens: 640, prompt_cache_miss_tokens: 300 },
  })),
  broken('invariant', 'more reasoning tokens than completion tokens', () => ({
    event_id: 'demo-bad-reasoning',
    model: 'gpt-4o',
    usage: { prompt_tokens: 800, completion_tokens: 100, completion_tokens_details: { reasoning_tokens: 400 } },
  })),
  broken('invariant', 'a negative token count', () => ({ event_id: 'demo-bad-negative', usage: { input_tokens: -12, output_tokens: 40 } })),
  broken('metadata_too_large', 'a whole prompt stuffed into metadata', () => ({ event_id: 'demo-bad-metadata', metadata: { prompt: 'lorem ipsum '.repeat(400) } })),
  broken('too_far_in_future', 'a gateway clock two hours fast', (_e, nowMs) => ({ event_id: 'demo-bad-clock', occurred_at: new Date(nowMs + 2 * HOUR_MS).toISOString() })),
];

export interface DemoTraffic {
  /**
   * The valid events in publishing order (by occurred_at, as a gateway publishes in real time),
   * redeliveries and the conflicting reuse included: what the gateway sends through libs/gateway-client.
   */
  published: DemoEvent[];
  /**
   * Messages the contract refuses, as a gateway without the library sends them (the library itself
   * refuses to): raw bytes, published after the events, for the ingestor to reject and dead-letter.
   */
  malformedMessages: { key: string; value: string }[];
  /** The whole UTC hours the traffic covers: [from, to). Events after `now` are not sent. */
  from: Date;
  to: Date;
  /** Distinct valid events (what the ingestor stores). */
  events: number;
  /** Valid events published a second time, identically. */
  redeliveries: number;
  malformed: { code: MalformedCode; what: string }[];
  /** The event published again with different usage: recorded as a conflict, the first one stands. */
  conflictEventId: string;
  byAccount: Map<string, number>;
  byModel: Map<string, number>;
  byShape: Map<UsageShape, number>;
}

function increment<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * About `events` valid events over the last `days` days ending at `now` (the current hour's
 * events that lie after `now` are not sent), plus DEMO_DUPLICATE_RATE redeliveries and one
 * conflicting reuse of an event id at the end; and the malformed messages above, each made from
 * an event spread through the range.
 */
export function buildDemoTraffic(options: { events: number; days: number; now: Date }): DemoTraffic {
  const nowMs = options.now.getTime();
  const lastHour = Math.floor(nowMs / HOUR_MS);
  const hours = options.days * 24;
  const firstHour = lastHour - hours + 1;
  const counts = allocate(options.events, firstHour, hours);

  const generated: GeneratedEvent[] = [];
  for (let a = 0; a < DEMO_ACCOUNTS.length; a++) {
    for (let h = 0; h < hours; h++) {
      for (let n = 0; n < counts[a * hours + h]; n++) {
        const g = makeDemoEvent(a, firstHour + h, n);
        if (g.occurredAtMs <= nowMs) generated.push(g);
      }
    }
  }
  generated.sort((x, y) => x.occurredAtMs - y.occurredAtMs || (x.event.event_id < y.event.event_id ? -1 : 1));
  if (generated.length === 0) throw new Error('no events to publish: ask for more --events or --days');

  // The conflict: the heaviest account's event with the smallest hash, so a rerun an hour later
  // almost always picks the same one (and event_conflicts keeps one row per distinct payload).
  let target = generated[0];
  let targetRank = Infinity;
  for (const g of generated) {
    if (g.event.account_id !== DEMO_ACCOUNTS[0].id) continue;
    const rank = g.u(77);
    if (rank < targetRank) {
      target = g;
      targetRank = rank;
    }
  }

  const traffic: DemoTraffic = {
    published: [],
    malformedMessages: [],
    from: new Date(firstHour * HOUR_MS),
    to: new Date((lastHour + 1) * HOUR_MS),
    events: generated.length,
    redeliveries: 0,
    malformed: [],
    conflictEventId: target.event.event_id,
    byAccount: new Map(),
    byModel: new Map(),
    byShape: new Map(),
  };
  // Made from events spread through the range (several from one event when there are fewer events than them).
  const malformedAfter = new Map<number, Malformed[]>();
  MALFORMED.forEach((m, k) => {
    const at = Math.floor(((k + 0.5) / MALFORMED.length) * generated.length);
    malformedAfter.set(at, [...(malformedAfter.get(at) ?? []), m]);
  });
  generated.forEach((g, i) => {
    traffic.published.push(g.event);
    if (g.u(50) < DEMO_DUPLICATE_RATE) {
      traffic.published.push(g.event);
      traffic.redeliveries++;
    }
    increment(traffic.byAccount, g.event.account_id);
    increment(traffic.byModel, g.event.model);
    increment(traffic.byShape, g.shape);
    for (const bad of malformedAfter.get(i) ?? []) {
      traffic.malformedMessages.push({ key: g.event.account_id, value: bad.value(g.event, nowMs) });
      traffic.malformed.push({ code: bad.code, what: bad.what });
    }
  });
  // The gateway re-counted a streamed response after a reconnect and reported it again under the
  // same event_id: a different payload, so a conflict (kept for an admin), not a second charge.
  const recounted = { ...target.event, usage: providerUsage(target.shape, { ...target.counts, output: target.counts.output + 42 }) };
  traffic.published.push(recounted);
  return traffic;
}
