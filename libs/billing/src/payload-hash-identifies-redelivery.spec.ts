import { eventJson, parseOk } from './__fixtures__/usage-events';
import { canonicalJson } from './canonical-json';

// The hash tells a redelivery of the same event (same event_id, same content: a duplicate no-op)
// from a different payload reusing the event_id (a conflict: the first one stands).
describe('payloadHash identifies a redelivery and tells it from a changed payload', () => {
  const original = {
    event_id: 'evt_hash_1',
    occurred_at: '2025-06-01T11:00:00Z',
    account_id: 'acct_acme',
    model: 'gpt-4o',
    usage: { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 } },
    metadata: { route: '/v1/chat/completions', tags: ['b', 'a'], nested: { z: 1, a: [{ y: 2, x: 1 }] } },
  };

  // The expected digest was computed independently: Python json.dumps(sort_keys=True, separators=(',', ':')) + hashlib.sha256.
  it('is the sha256 of the canonical JSON of the whole event', () => {
    expect(canonicalJson(original)).toBe(
      '{"account_id":"acct_acme","event_id":"evt_hash_1","metadata":{"nested":{"a":[{"x":1,"y":2}],"z":1},' +
        '"route":"/v1/chat/completions","tags":["b","a"]},"model":"gpt-4o","occurred_at":"2025-06-01T11:00:00Z",' +
        '"usage":{"completion_tokens":20,"prompt_tokens":100,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":64}}}',
    );
    expect(parseOk(JSON.stringify(original)).payloadHash).toBe('fefbcf66babd8ec8151b359c2a0340053dbec7270ad5e074abd4ffd14a55529e');
  });

  it('is the same under key reordering at every level and under whitespace', () => {
    const reordered = {
      usage: { prompt_tokens_details: { audio_tokens: 0, cached_tokens: 64 }, completion_tokens: 20, prompt_tokens: 100 },
      metadata: { nested: { a: [{ x: 1, y: 2 }], z: 1 }, tags: ['b', 'a'], route: '/v1/chat/completions' },
      model: 'gpt-4o',
      account_id: 'acct_acme',
      occurred_at: '2025-06-01T11:00:00Z',
      event_id: 'evt_hash_1',
    };
    const hash = parseOk(JSON.stringify(original)).payloadHash;
    expect(parseOk(JSON.stringify(reordered)).payloadHash).toBe(hash);
    expect(parseOk(JSON.stringify(reordered, null, 2)).payloadHash).toBe(hash);
    expect(parseOk(Buffer.from(JSON.stringify(reordered))).payloadHash).toBe(hash);
    expect(parseOk(reordered).payloadHash).toBe(hash);
  });

  it('changes when a token count changes', () => {
    const changed = { ...original, usage: { ...original.usage, completion_tokens: 21 } };
    expect(parseOk(JSON.stringify(changed)).payloadHash).not.toBe(parseOk(JSON.stringify(original)).payloadHash);
  });

  it('changes when array order or metadata changes (arrays are ordered data)', () => {
    const hash = parseOk(JSON.stringify(original)).payloadHash;
    expect(parseOk(JSON.stringify({ ...original, metadata: { ...original.metadata, tags: ['a', 'b'] } })).payloadHash).not.toBe(hash);
    expect(parseOk(JSON.stringify({ ...original, metadata: null })).payloadHash).not.toBe(hash);
  });

  it('covers the fields as sent: an equivalent timestamp written differently is a different payload', () => {
    const sameInstant = { ...original, occurred_at: '2025-06-01T13:00:00+02:00' };
    const a = parseOk(JSON.stringify(original));
    const b = parseOk(JSON.stringify(sameInstant));
    expect(b.occurredAt.getTime()).toBe(a.occurredAt.getTime());
    expect(b.payloadHash).not.toBe(a.payloadHash);
  });

  it('writes numbers and escapes strings exactly as JSON.stringify does', () => {
    const value = { n: [0, -0, 1e21, 1e-7, 123.456, 2 ** 53], s: 'quote " backslash \\ newline \n tab \t \u2028 é 😀 \ud800' };
    expect(canonicalJson(value)).toBe(JSON.stringify(value));
    expect(parseOk(eventJson({ metadata: value })).payloadHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('sorts keys by UTF-16 code unit at every level, whatever order they arrive in', () => {
    // Integer-like keys come out of Object.keys first and numerically; canonical order is textual.
    const value = { b: 1, a: { z: [{ d: 1, c: 2 }], y: null }, '10': 1, '2': 1, B: 1, é: 1, '': 1, a_b: 1, 'a-b': 1 };
    // Expected from Python: json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    expect(canonicalJson(value)).toBe('{"":1,"10":1,"2":1,"B":1,"a":{"y":null,"z":[{"c":2,"d":1}]},"a-b":1,"a_b":1,"b":1,"é":1}');
  });
});
