/**
 * Micro-benchmark of the ingest hot path on one core: parseUsageEvent + priceEventUnits per message
 * (what UsageIngestor.prepare does per message, less building the row).
 * Run: npx ts-node bench/parse.ts
 * The ingestor target is ~50,000 events/s; this prints events/s per usage shape and overall.
 */
import { OverrideBook, PriceBook, SEED_PRICE_VERSIONS, parseUsageEvent, priceEventUnits, priceVersionFromSeed } from '@tokenmeter/billing';

const book = new PriceBook(SEED_PRICE_VERSIONS.map((seed, i) => priceVersionFromSeed(seed, String(i + 1))));
const overrides = new OverrideBook([]);
const now = new Date('2025-06-01T12:00:00Z');

function message(i: number, model: string, usage: object): Buffer {
  return Buffer.from(
    JSON.stringify({
      event_id: `evt_${i.toString(36)}_${model}`,
      occurred_at: '2025-06-01T11:59:58.123Z',
      account_id: 'acct_4f9c2e',
      api_key_id: 'key_01HZX3',
      model,
      request_id: `req_${i}`,
      usage,
      metadata: { route: '/v1/chat/completions', region: 'eu-west-1', stream: true },
    }),
  );
}

const SHAPES: Array<[string, (i: number) => Buffer]> = [
  ['openai', (i) => message(i, 'gpt-4o', { prompt_tokens: 1200 + i, completion_tokens: 300, total_tokens: 1500 + i, prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } })],
  ['deepseek', (i) => message(i, 'deepseek-r1', { prompt_tokens: 2000 + i, completion_tokens: 900, prompt_cache_hit_tokens: 1536, prompt_cache_miss_tokens: 464 + i, total_tokens: 2900 + i, completion_tokens_details: { reasoning_tokens: 700 } })],
  ['anthropic', (i) => message(i, 'claude-sonnet-4', { input_tokens: 50 + i, output_tokens: 400, cache_read_input_tokens: 8000, cache_creation_input_tokens: 120 })],
  ['canonical', (i) => message(i, 'gpt-4o-mini', { input_tokens: 700 + i, output_tokens: 90, cache_read_tokens: 0 })],
];

const N = 2000; // distinct messages per shape, cycled
let sink = 0;

function run(messages: Buffer[], iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const result = parseUsageEvent(messages[i % messages.length], now);
    if (!result.ok) throw new Error(result.rejection.reason);
    const priced = priceEventUnits(book, overrides, result.event);
    if (priced === undefined) throw new Error('unpriced');
    sink += Number(priced.costs.total & 1n);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const all: Buffer[] = [];
console.log(`node ${process.version}, one core, ${N} distinct messages per shape`);
for (const [name, make] of SHAPES) {
  const messages = Array.from({ length: N }, (_, i) => make(i));
  all.push(...messages);
  run(messages, 50_000); // warm-up
  const iterations = 200_000;
  const seconds = run(messages, iterations);
  console.log(`${name.padEnd(10)} ${Math.round(iterations / seconds).toLocaleString('en-US').padStart(9)} events/s (parse + price)`);
}
const iterations = 400_000;
const seconds = run(all, iterations);
console.log(`${'mixed'.padEnd(10)} ${Math.round(iterations / seconds).toLocaleString('en-US').padStart(9)} events/s (parse + price)`);

// Split of the mixed run: parse alone, then pricing alone.
const parsed = all.map((m) => {
  const r = parseUsageEvent(m, now);
  if (!r.ok) throw new Error(r.rejection.reason);
  return r.event;
});
let start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) sink += parseUsageEvent(all[i % all.length], now).ok ? 1 : 0;
const parseSeconds = Number(process.hrtime.bigint() - start) / 1e9;
start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) {
  const event = parsed[i % parsed.length];
  sink += Number(priceEventUnits(book, overrides, event)!.costs.total & 1n);
}
const priceSeconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`parse only ${Math.round(iterations / parseSeconds).toLocaleString('en-US').padStart(9)} events/s`);
console.log(`price only ${Math.round(iterations / priceSeconds).toLocaleString('en-US').padStart(9)} events/s (priceEventUnits: versionAt, overrideAt, 4 bigint products)`);
if (sink === Number.MIN_VALUE) console.log(sink);
