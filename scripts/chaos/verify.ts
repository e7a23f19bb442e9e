/**
 * What a chaos case asserts once the faults are over and ingestion has caught up.
 *
 * Expected values come from what the broker holds (the whole topic read back, partition by
 * partition in offset order), cross-checked against the harness's own plan, and priced from the
 * seed price book in memory (the ingestor reads the book from Postgres) with libs/billing's one
 * pricing function, whose arithmetic a property test holds to a Decimal reference.
 */
import type { Kafka } from 'kafkajs';
import {
  costUnitsToDecimal,
  Decimal,
  OverrideBook,
  parseUsageEvent,
  PriceBook,
  priceEventUnits,
  priceVersionFromSeed,
  SEED_PRICE_VERSIONS,
  usd,
  ZERO,
  type UsageEvent,
} from '@tokenmeter/billing';
import type { Database } from '@tokenmeter/db';
import { committedOffsets, withAdmin } from '../../test/helpers/kafka';
import { rollupDifferences } from '../../test/helpers/tokenmeter-db';
import type { Expect, PlannedMessage } from './workload';

export interface TopicMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Partition -> high watermark (the next offset to be written). */
export async function highWatermarks(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  return withAdmin(kafka, async (admin) => new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)])));
}

/** Every message of a topic, read from the beginning up to the current high watermarks. */
export async function readWholeTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<TopicMessage[]> {
  const hw = await highWatermarks(kafka, topic);
  const remaining = new Set([...hw].filter(([, high]) => high > 0n).map(([p]) => p));
  const out: TopicMessage[] = [];
  if (remaining.size === 0) return out;
  const consumer = kafka.consumer({ groupId: `chaos-verify-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, maxBytes: 16 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.run({
    partitionsConsumedConcurrently: 6,
    eachBatch: async ({ batch, resolveOffset }) => {
      for (const m of batch.messages) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v ?? '');
        out.push({ partition: batch.partition, offset: m.offset, key: m.key?.toString() ?? null, value: m.value, headers });
        resolveOffset(m.offset);
        if (BigInt(m.offset) + 1n >= hw.get(batch.partition)!) remaining.delete(batch.partition);
      }
      if (remaining.size === 0) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  if (remaining.size > 0) throw new Error(`could not read ${topic} to its end within ${timeoutMs} ms (partitions ${[...remaining].join(', ')})`);
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

interface ExpectedEvent {
  event: UsageEvent;
  cost: Decimal;
}

export interface Expected {
  events: Map<string, ExpectedEvent>;
  /** `${partition}:${offset}` -> rejection code and event id hint. */
  rejected: Map<string, { code: string; eventId: string | null; raw: string }>;
  /** `${event_id} ${payload_hash}` of every payload that lost to the first one. */
  conflicts: Set<string>;
  duplicates: number;
  costUsd: Decimal;
  perAccount: Map<string, { events: number; cost: Decimal }>;
}

const PRICE_BOOK = new PriceBook(SEED_PRICE_VERSIONS.map((v, i) => priceVersionFromSeed(v, String(i + 1))));
const NO_OVERRIDES = new OverrideBook([]);

/**
 * What the database must hold after ingesting `messages` (in offset order per partition): the
 * first payload of each event_id stands, later identical ones are duplicates, later different
 * ones conflicts; anything the parser refuses is rejected at its own offset.
 * `upTo` (partition -> next offset) limits it to a prefix, as for a backup taken mid-stream.
 */
export function expectedFrom(messages: TopicMessage[], now: Date, upTo?: Map<number, bigint>): Expected {
  const x: Expected = { events: new Map(), rejected: new Map(), conflicts: new Set(), duplicates: 0, costUsd: ZERO, perAccount: new Map() };
  for (const m of messages) {
    if (upTo && BigInt(m.offset) >= (upTo.get(m.partition) ?? 0n)) continue;
    // As the ingestor treats a message with no value (usage-ingestor.ts).
    const parsed = m.value === null ? ({ ok: false, rejection: { code: 'invalid_json', eventId: null } } as const) : parseUsageEvent(m.value, now);
    if (!parsed.ok) {
      x.rejected.set(`${m.partition}:${m.offset}`, { code: parsed.rejection.code, eventId: parsed.rejection.eventId, raw: m.value?.toString('utf8') ?? '' });
      continue;
    }
    const e = parsed.event;
    const existing = x.events.get(e.eventId);
    if (existing) {
      if (existing.event.payloadHash === e.payloadHash) x.duplicates++;
      else x.conflicts.add(`${e.eventId} ${e.payloadHash}`);
      continue;
    }
    const priced = priceEventUnits(PRICE_BOOK, NO_OVERRIDES, e);
    if (!priced) throw new Error(`no seed price for ${e.model} at ${e.occurredAt.toISOString()}: the workload must only use priced models`);
    const cost = costUnitsToDecimal(priced.costs.total);
    x.events.set(e.eventId, { event: e, cost });
    x.costUsd = x.costUsd.plus(cost);
    const acct = x.perAccount.get(e.accountId) ?? { events: 0, cost: ZERO };
    acct.events++;
    acct.cost = acct.cost.plus(cost);
    x.perAccount.set(e.accountId, acct);
  }
  return x;
}

/** The broker holds exactly what the harness meant to publish, and the parser classifies it as the harness meant. */
export function checkTopicAgainstPlan(messages: TopicMessage[], plan: PlannedMessage[], expected: Expected, now: Date): Check[] {
  const meant = new Map<string, Expect>();
  for (const p of plan) meant.set(p.value ?? '\u0000null', p.expect);
  const seen = new Set<string>();
  let foreign = 0;
  let misclassified = 0;
  const examples: string[] = [];
  for (const m of messages) {
    const text = m.value?.toString('utf8') ?? '\u0000null';
    const label = meant.get(text);
    seen.add(text);
    if (label === undefined) {
      foreign++;
      continue;
    }
    const rejected = expected.rejected.get(`${m.partition}:${m.offset}`);
    let actual: Expect;
    if (rejected) actual = rejected.code as Expect;
    else {
      const parsed = parseUsageEvent(text, now);
      if (!parsed.ok) throw new Error(`${m.partition}:${m.offset} parsed once as valid, now not: ${parsed.rejection.reason}`);
      const standing = expected.events.get(parsed.event.eventId)!;
      actual = standing.event.payloadHash === parsed.event.payloadHash ? 'valid' : 'conflict';
    }
    if (actual !== label) {
      misclassified++;
      if (examples.length < 3) examples.push(`${m.partition}:${m.offset} meant ${label}, parsed as ${actual}: ${text.slice(0, 120)}`);
    }
  }
  const missing = [...meant.keys()].filter((v) => !seen.has(v)).length;
  return [
    { name: 'topic holds every planned message', ok: missing === 0 && foreign === 0, detail: `${meant.size} distinct planned payloads, ${missing} missing, ${foreign} not from the plan, ${messages.length} messages in the topic` },
    { name: 'parser classifies the topic as planned', ok: misclassified === 0, detail: misclassified === 0 ? 'every message as meant (valid / conflict / rejection code)' : `${misclassified} differ: ${examples.join(' | ')}` },
  ];
}

function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

/** The database, DLQ and consumer group agree with `expected` and with each other. */
export async function checkStored(
  db: Database,
  kafka: Kafka | null,
  topic: string,
  groupId: string | null,
  expected: Expected,
  dlq: TopicMessage[] | null,
): Promise<Check[]> {
  const checks: Check[] = [];

  // Every valid event stored exactly once, with the first payload and the independently computed cost.
  const { rows } = await db.pool.query<{
    event_id: string;
    payload_hash: string;
    cost_usd: string | null;
    input_tokens: string;
    output_tokens: string;
    cache_read_tokens: string;
    cache_write_tokens: string;
  }>(
    'SELECT event_id, payload_hash, cost_usd::text, input_tokens::text, output_tokens::text, cache_read_tokens::text, cache_write_tokens::text FROM usage_events',
  );
  let wrong = 0;
  const examples: string[] = [];
  const storedIds = new Set<string>();
  for (const r of rows) {
    storedIds.add(r.event_id);
    const x = expected.events.get(r.event_id);
    const t = x?.event.tokens;
    const ok =
      x !== undefined &&
      r.payload_hash === x.event.payloadHash &&
      r.cost_usd !== null &&
      usd(r.cost_usd).equals(x.cost) &&
      Number(r.input_tokens) === t!.inputTokens &&
      Number(r.output_tokens) === t!.outputTokens &&
      Number(r.cache_read_tokens) === t!.cacheReadTokens &&
      Number(r.cache_write_tokens) === t!.cacheWriteTokens;
    if (!ok) {
      wrong++;
      if (examples.length < 3) examples.push(`${r.event_id}: stored ${r.cost_usd} ${r.payload_hash.slice(0, 8)}, expected ${x ? `${x.cost.toFixed()} ${x.event.payloadHash.slice(0, 8)}` : 'no such event'}`);
    }
  }
  const missing = [...expected.events.keys()].filter((id) => !storedIds.has(id));
  checks.push(
    check(
      'every valid event stored exactly once, first payload, exact cost',
      rows.length === expected.events.size && missing.length === 0 && wrong === 0,
      `expected ${expected.events.size} events (${expected.duplicates} redeliveries in the topic), stored ${rows.length}; ${missing.length} missing${missing.length ? ` (e.g. ${missing.slice(0, 3).join(', ')})` : ''}; ${wrong} differ${examples.length ? `: ${examples.join(' | ')}` : ''}`,
    ),
  );

  const sums = await db.pool.query<{ account_id: string; n: string; cost: string }>('SELECT account_id, count(*)::text AS n, coalesce(sum(cost_usd), 0)::text AS cost FROM usage_events GROUP BY 1');
  let total = ZERO;
  let accountsWrong = 0;
  for (const r of sums.rows) {
    total = total.plus(usd(r.cost));
    const x = expected.perAccount.get(r.account_id);
    if (!x || x.events !== Number(r.n) || !x.cost.equals(usd(r.cost))) accountsWrong++;
  }
  if (sums.rows.length !== expected.perAccount.size) accountsWrong += Math.abs(sums.rows.length - expected.perAccount.size);
  checks.push(
    check('exact cost sum, in total and per account', total.equals(expected.costUsd) && accountsWrong === 0, `expected $${expected.costUsd.toFixed()} over ${expected.perAccount.size} accounts, stored $${total.toFixed()}; ${accountsWrong} accounts differ`),
  );

  const diffs = await rollupDifferences(db);
  checks.push(check('rollups equal raw events (every column, every account/key/model/hour)', diffs.length === 0, diffs.length === 0 ? 'no differing row' : `${diffs.length}+ differing rows, e.g. ${JSON.stringify(diffs[0])}`));

  // Rejections: one row per malformed message (by topic offset), and the same set on the DLQ.
  const rej = await db.pool.query<{ partition: number; offset: string; reason_code: string; event_id: string | null; raw_payload: string }>(
    'SELECT partition, "offset"::text, reason_code, event_id, raw_payload FROM rejected_events WHERE topic = $1',
    [topic],
  );
  let rejWrong = 0;
  const rejExamples: string[] = [];
  const rejKeys = new Set<string>();
  for (const r of rej.rows) {
    const k = `${r.partition}:${r.offset}`;
    rejKeys.add(k);
    const x = expected.rejected.get(k);
    if (!x || x.code !== r.reason_code || x.eventId !== r.event_id || x.raw !== r.raw_payload) {
      rejWrong++;
      if (rejExamples.length < 2) rejExamples.push(`${k}: stored ${r.reason_code}/${r.event_id} "${r.raw_payload.slice(0, 60)}", expected ${x ? `${x.code}/${x.eventId} "${x.raw.slice(0, 60)}"` : 'no rejection'}`);
    }
  }
  const rejMissing = [...expected.rejected.keys()].filter((k) => !rejKeys.has(k)).length;
  const codes = new Map<string, number>();
  for (const x of expected.rejected.values()) codes.set(x.code, (codes.get(x.code) ?? 0) + 1);
  checks.push(
    check(
      'rejected_events: one row per malformed message, right code and payload',
      rej.rows.length === expected.rejected.size && rejWrong === 0 && rejMissing === 0,
      `expected ${expected.rejected.size} (${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}), stored ${rej.rows.length}, ${rejMissing} missing, ${rejWrong} differ${rejExamples.length ? `: ${rejExamples.join(' | ')}` : ''}`,
    ),
  );

  if (dlq) {
    const byOrigin = new Map<string, TopicMessage[]>();
    for (const m of dlq) {
      if (m.headers['x-original-topic'] !== topic) continue;
      const k = `${m.headers['x-original-partition']}:${m.headers['x-original-offset']}`;
      byOrigin.set(k, [...(byOrigin.get(k) ?? []), m]);
    }
    let dlqWrong = 0;
    for (const [k, copies] of byOrigin) {
      const x = expected.rejected.get(k);
      for (const c of copies) if (!x || c.headers['x-reject-code'] !== x.code || (c.value?.toString('utf8') ?? '') !== x.raw) dlqWrong++;
    }
    const dlqMissing = [...rejKeys].filter((k) => !byOrigin.has(k)).length;
    const extra = [...byOrigin.keys()].filter((k) => !rejKeys.has(k)).length;
    const copies = dlq.length - byOrigin.size;
    checks.push(
      check(
        'DLQ == rejected_events (same original offsets, codes, payloads)',
        dlqMissing === 0 && extra === 0 && dlqWrong === 0,
        `${dlq.length} DLQ messages for ${byOrigin.size} distinct original offsets (${copies} re-published copies: the DLQ is at-least-once), ${rejKeys.size} rejected_events rows; ${dlqMissing} rows without a DLQ message, ${extra} DLQ messages without a row, ${dlqWrong} differ`,
      ),
    );
  }

  const conf = await db.pool.query<{ event_id: string; payload_hash: string }>('SELECT event_id, payload_hash FROM event_conflicts');
  const confKeys = new Set(conf.rows.map((r) => `${r.event_id} ${r.payload_hash}`));
  const confMissing = [...expected.conflicts].filter((k) => !confKeys.has(k)).length;
  checks.push(
    check('event_conflicts: each conflicting payload once, the first one stands', conf.rows.length === expected.conflicts.size && confMissing === 0, `expected ${expected.conflicts.size}, stored ${conf.rows.length}, ${confMissing} missing`),
  );

  if (kafka && groupId) {
    const hw = await highWatermarks(kafka, topic);
    const committed = await committedOffsets(kafka, groupId, topic);
    const prog = await db.pool.query<{ partition: number; next_offset: string }>('SELECT partition, next_offset::text FROM ingest_progress WHERE topic = $1', [topic]);
    const stored = new Map(prog.rows.map((r) => [r.partition, BigInt(r.next_offset)]));
    const lines: string[] = [];
    let ok = true;
    for (const [p, high] of [...hw].sort((a, b) => a[0] - b[0])) {
      const c = BigInt(committed[p] ?? '-1');
      const s = stored.get(p) ?? 0n;
      const cc = c < 0n ? 0n : c;
      if (!(cc === s && s === high)) ok = false;
      lines.push(`p${p} ${cc}/${s}/${high}`);
    }
    checks.push(check('committed offsets == ingest_progress == high watermark, per partition', ok, `committed/stored/high: ${lines.join(', ')}`));
  }
  return checks;
}
