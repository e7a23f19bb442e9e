import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalHash } from '@tokenmeter/billing/canonical-json';
import { parseUsageEvent } from '@tokenmeter/billing/usage-event';
import { NOW, eventObject } from '@tokenmeter/billing/__fixtures__/usage-events';
import { eventIdForRequest } from './event-id';
import { prepareUsageMessage, type UsageEventInput } from './usage-message';

const input = (overrides: Record<string, unknown> = {}) => eventObject(overrides) as unknown as UsageEventInput;

function prepared(event: UsageEventInput, now: Date = NOW) {
  const result = prepareUsageMessage(event, now);
  if (!result.ok) throw new Error(`expected a message, got ${result.rejection.code}: ${result.rejection.reason}`);
  return result.message;
}

describe('prepareUsageMessage: the bytes the ingestor parses, keyed by account', () => {
  it('keys by account_id and sends the event unchanged when it has an event_id', () => {
    const event = input();
    const message = prepared(event);
    expect(message).toEqual({ eventId: 'evt_01J0000000000000000000', key: 'acct_acme', value: JSON.stringify(event) });
  });

  it('mints event_id from request_id when there is none (absent or null), deterministically', () => {
    const withoutId = input({ event_id: undefined, request_id: 'chatcmpl-9f1c2e' });
    const message = prepared(withoutId);
    expect(message.eventId).toBe(eventIdForRequest('chatcmpl-9f1c2e'));
    expect(JSON.parse(message.value)).toEqual({ ...withoutId, event_id: message.eventId });
    expect(prepared(input({ event_id: null, request_id: 'chatcmpl-9f1c2e' })).eventId).toBe(message.eventId);
    // A retry of the same request: the same bytes, so the ingestor sees the same payload hash (a duplicate).
    expect(prepared(input({ event_id: undefined, request_id: 'chatcmpl-9f1c2e' })).value).toBe(message.value);
    expect(withoutId).not.toHaveProperty('event_id');
  });

  it('sends what the ingestor stores: same event, same payload hash', () => {
    const event = input({ event_id: undefined, request_id: 'req_hash' });
    const message = prepared(event);
    const parsed = parseUsageEvent(message.value, NOW);
    if (!parsed.ok) throw new Error(parsed.rejection.reason);
    expect(parsed.event.eventId).toBe(message.eventId);
    expect(parsed.event.payloadHash).toBe(canonicalHash({ ...event, event_id: message.eventId }));
  });

  it('takes occurred_at as a Date and sends its ISO string', () => {
    const message = prepared(input({ occurred_at: new Date('2025-06-01T11:59:30.250Z') }));
    expect(JSON.parse(message.value).occurred_at).toBe('2025-06-01T11:59:30.250Z');
  });

  it('accepts every example event of docs/event-contract.md', () => {
    const contract = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'event-contract.md'), 'utf8');
    const examples = [...contract.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]) as UsageEventInput);
    expect(examples).toHaveLength(4);
    for (const e of examples) expect(prepared(e, new Date(e.occurred_at)).key).toBe(e.account_id);
  });
});

describe('prepareUsageMessage refuses exactly what the ingestor refuses, with its code and reason', () => {
  const bigint = { ...eventObject(), metadata: { n: BigInt(1) } };
  const longRequestId = 'r'.repeat(257);
  // [scenario, event, code, the event as it goes on the wire when that differs (a minted event_id)]
  const cases: [string, unknown, string, unknown?][] = [
    ['no event_id and no request_id', eventObject({ event_id: undefined, request_id: undefined }), 'schema'],
    ['no event_id and an empty request_id', eventObject({ event_id: undefined, request_id: '' }), 'schema'],
    ['an event_id with spaces', eventObject({ event_id: 'evt with spaces' }), 'schema'],
    [
      'a request id too long to store (the minted id does not hide it)',
      eventObject({ event_id: undefined, request_id: longRequestId }),
      'schema',
      eventObject({ event_id: eventIdForRequest(longRequestId), request_id: longRequestId }),
    ],
    ['an account id with spaces', eventObject({ account_id: 'Northwind Analytics' }), 'schema'],
    ['an unknown top-level field', eventObject({ cost_usd: '0.01' }), 'schema'],
    ['occurred_at without a timezone', eventObject({ occurred_at: '2025-06-01T11:59:30' }), 'schema'],
    ['OpenAI Responses API usage', eventObject({ usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 5 }, output_tokens: 1 } }), 'schema'],
    ['NUL in metadata', eventObject({ metadata: { note: 'a\u0000b' } }), 'schema'],
    ['not an object', null, 'schema'],
    ['a negative count', eventObject({ usage: { input_tokens: -1, output_tokens: 1 } }), 'invariant'],
    ['DeepSeek hit + miss not the prompt', eventObject({ usage: { prompt_tokens: 100, completion_tokens: 1, prompt_cache_hit_tokens: 50, prompt_cache_miss_tokens: 40 } }), 'invariant'],
    ['metadata over 4096 bytes', eventObject({ metadata: { prompt: 'x'.repeat(4100) } }), 'metadata_too_large'],
    ['occurred_at an hour ahead', eventObject({ occurred_at: new Date(NOW.getTime() + 3_600_000).toISOString() }), 'too_far_in_future'],
    ['a BigInt (not JSON)', bigint, 'invalid_json'],
  ];

  it.each(cases)('%s', (_name, event, code, onTheWire = event) => {
    const result = prepareUsageMessage(event as UsageEventInput, NOW);
    // The ingestor reads the bytes off the topic (an object that has none is handed over as it is).
    const ingestor = parseUsageEvent(code === 'invalid_json' ? onTheWire : JSON.stringify(onTheWire), NOW);
    if (ingestor.ok || result.ok) throw new Error('expected both to refuse the event');
    expect(result.rejection.code).toBe(code);
    expect(result.rejection).toEqual(ingestor.rejection);
  });
});
