import { NOW, eventJson, eventObject, parseOk, parseRejected } from './__fixtures__/usage-events';
import { parseUsageEvent } from './usage-event';

const EVENT_ID = 'evt_01J0000000000000000000';

function at(offsetMs: number): string {
  return new Date(NOW.getTime() + offsetMs).toISOString();
}

/** metadata {"pad":"xxx..."} whose JSON is exactly `bytes` bytes long. */
function metadataOfBytes(bytes: number): Record<string, string> {
  const overhead = JSON.stringify({ pad: '' }).length;
  return { pad: 'x'.repeat(bytes - overhead) };
}

describe('malformed or out-of-contract events are rejected with a typed reason', () => {
  it.each([
    ['not JSON at all', 'hello'],
    ['truncated JSON', '{"event_id":"evt_1","usage":{'],
    ['an empty message', ''],
  ])('invalid JSON: %s', (_name, text) => {
    const rejection = parseRejected(text);
    expect(rejection.code).toBe('invalid_json');
    expect(rejection.reason).toMatch(/^payload is not valid JSON: /);
    expect(rejection.eventId).toBeNull();
  });

  it('invalid UTF-8/JSON in a Buffer is invalid_json, not a throw', () => {
    expect(parseRejected(Buffer.from([0xff, 0xfe, 0x7b])).code).toBe('invalid_json');
  });

  it('an HTTP body that cannot be serialised is invalid_json', () => {
    const cyclic: Record<string, unknown> = eventObject();
    cyclic.self = cyclic;
    expect(parseRejected(cyclic).code).toBe('invalid_json');
    expect(parseRejected(undefined)).toEqual({ code: 'invalid_json', reason: 'payload is empty', eventId: null });
  });

  it.each([
    ['[]', 'event must be a JSON object (got array)'],
    ['42', 'event must be a JSON object (got number)'],
    ['null', 'event must be a JSON object (got null)'],
  ])('JSON that is not an object: %s', (text, reason) => {
    expect(parseRejected(text)).toEqual({ code: 'schema', reason, eventId: null });
  });

  describe('occurred_at may be at most 5 minutes after the receive time', () => {
    it('4m59s ahead is accepted', () => {
      expect(parseOk(eventJson({ occurred_at: at(4 * 60_000 + 59_000) })).occurredAt.getTime()).toBe(NOW.getTime() + 299_000);
    });

    it('exactly 5m ahead is accepted', () => {
      expect(parseOk(eventJson({ occurred_at: at(5 * 60_000) })).occurredAt.toISOString()).toBe('2025-06-01T12:05:00.000Z');
    });

    it('5m01s ahead is rejected', () => {
      expect(parseRejected(eventJson({ occurred_at: at(5 * 60_000 + 1_000) }))).toEqual({
        code: 'too_far_in_future',
        reason:
          'occurred_at (2025-06-01T12:05:01.000Z) is 301s after the receive time (2025-06-01T12:00:00.000Z); at most 300s of clock skew is accepted',
        eventId: EVENT_ID,
      });
    });

    it('the offset is applied before comparing: 14:04:59+02:00 is 4m59s ahead', () => {
      expect(parseOk(eventJson({ occurred_at: '2025-06-01T14:04:59+02:00' })).occurredAt.toISOString()).toBe('2025-06-01T12:04:59.000Z');
      expect(parseRejected(eventJson({ occurred_at: '2025-06-01T14:05:01+02:00' })).code).toBe('too_far_in_future');
    });

    it('old events are accepted (late delivery is normal)', () => {
      expect(parseOk(eventJson({ occurred_at: '2024-01-01T00:00:00Z' })).occurredAt.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    });
  });

  describe('metadata JSON may be at most 4096 bytes', () => {
    it('4096 bytes is accepted', () => {
      const metadata = metadataOfBytes(4096);
      expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(4096);
      expect(parseOk(eventJson({ metadata })).metadata).toEqual(metadata);
    });

    it('4097 bytes is rejected', () => {
      expect(parseRejected(eventJson({ metadata: metadataOfBytes(4097) }))).toEqual({
        code: 'metadata_too_large',
        reason: 'metadata is 4097 bytes as JSON; at most 4096 are allowed',
        eventId: EVENT_ID,
      });
    });

    it('counts UTF-8 bytes, not characters', () => {
      // "é" is 2 bytes: 2046 of them plus the 10-byte wrapper is 4102 bytes in 2056 characters.
      const metadata = { pad: 'é'.repeat(2046) };
      expect(parseRejected(eventJson({ metadata })).reason).toBe('metadata is 4102 bytes as JSON; at most 4096 are allowed');
    });

    it('metadata must be an object or null', () => {
      expect(parseRejected(eventJson({ metadata: ['a'] }))).toEqual({
        code: 'schema',
        reason: 'metadata must be an object (got array)',
        eventId: EVENT_ID,
      });
      expect(parseOk(eventJson({ metadata: null })).metadata).toBeNull();
      expect(parseOk(eventJson({ metadata: undefined })).metadata).toBeNull();
    });
  });

  describe('event_id: 1-128 characters from [A-Za-z0-9._:-]', () => {
    it.each(['a', 'evt_01J:gw-1.retry', 'x'.repeat(128), 'A-Z.a_z:0-9'])('accepts %s', (eventId) => {
      expect(parseOk(eventJson({ event_id: eventId })).eventId).toBe(eventId);
    });

    it.each([
      ['an empty id', ''],
      ['129 characters', 'x'.repeat(129)],
      ['a space', 'evt 1'],
      ['a slash', 'evt/1'],
      ['non-ASCII', 'évt1'],
    ])('rejects %s', (_name, eventId) => {
      const rejection = parseRejected(eventJson({ event_id: eventId }));
      expect(rejection.code).toBe('schema');
      expect(rejection.reason).toBe('event_id must be 1-128 characters from [A-Za-z0-9._:-]');
    });

    it('is required', () => {
      expect(parseRejected(eventJson({ event_id: undefined }))).toEqual({ code: 'schema', reason: 'event_id is required', eventId: null });
    });

    it('a readable but invalid id is still reported on the rejection', () => {
      expect(parseRejected(eventJson({ event_id: 'evt 1' })).eventId).toBe('evt 1');
      expect(parseRejected(eventJson({ event_id: 'x'.repeat(129) })).eventId).toBeNull();
    });
  });

  it.each([
    [{ account_id: 'acct/1' }, 'account_id must be 1-128 characters from [A-Za-z0-9._:-]'],
    [{ account_id: undefined }, 'account_id is required'],
    [{ api_key_id: 'key 1' }, 'api_key_id must be 1-128 characters from [A-Za-z0-9._:-]'],
    [{ model: '' }, 'model must not be empty'],
    [{ model: 'm'.repeat(129) }, 'model must be at most 128 characters'],
    [{ model: 42 }, 'model must be a string (got number)'],
    [{ request_id: 'r'.repeat(257) }, 'request_id must be at most 256 characters'],
    [{ usage: undefined }, 'usage is required'],
    [{ usage: [1, 2] }, 'usage must be an object (got array)'],
    [{ occurred_at: undefined }, 'occurred_at is required'],
  ])('other envelope fields: %j', (overrides, reason) => {
    expect(parseRejected(eventJson(overrides))).toEqual({ code: 'schema', reason, eventId: EVENT_ID });
  });

  it('several problems are reported together', () => {
    expect(parseRejected(eventJson({ account_id: undefined, model: 7 })).reason).toBe(
      'account_id is required; model must be a string (got number)',
    );
  });

  it('unknown top-level fields are rejected: the contract is versioned by topic name', () => {
    expect(parseRejected(eventJson({ tenant: 't1', cost: 0.1 }))).toEqual({
      code: 'schema',
      reason: 'unknown top-level field(s) "tenant", "cost": the contract is closed; new fields need a new topic version',
      eventId: EVENT_ID,
    });
  });

  it('a "__proto__" key is an unknown field, not a prototype change', () => {
    const text = eventJson().replace('{', '{"__proto__":{"admin":true},');
    expect(parseRejected(text).reason).toBe(
      'unknown top-level field(s) "__proto__": the contract is closed; new fields need a new topic version',
    );
  });

  it.each([
    '2025-06-01T11:59:30',
    '2025-06-01 11:59:30Z',
    '2025-06-01',
    '2025-06-01T11:59Z',
    '2025-02-30T00:00:00Z',
    '2025-06-01T24:00:00Z',
    '2025-06-01T11:59:60Z',
    '2025-06-01T11:59:30+0200',
    '2025-06-01T11:59:30.Z',
    '1748779170',
  ])('occurred_at without a timezone or not RFC 3339 is rejected: %s', (occurredAt) => {
    const rejection = parseRejected(eventJson({ occurred_at: occurredAt }));
    expect(rejection.code).toBe('schema');
    expect(rejection.reason).toBe(
      `occurred_at must be an RFC 3339 date-time with a timezone (Z or +hh:mm), e.g. 2025-01-01T12:00:00.123Z (got ${JSON.stringify(occurredAt)})`,
    );
  });

  it.each([
    ['2025-06-01T11:59:30Z', '2025-06-01T11:59:30.000Z'],
    ['2025-06-01t11:59:30z', '2025-06-01T11:59:30.000Z'],
    ['2025-06-01T11:59:30.1Z', '2025-06-01T11:59:30.100Z'],
    ['2025-06-01T11:59:30.123987Z', '2025-06-01T11:59:30.123Z'],
    ['2025-06-01T08:29:30.5-03:30', '2025-06-01T11:59:30.500Z'],
    ['2024-02-29T23:59:59.999+00:00', '2024-02-29T23:59:59.999Z'],
  ])('occurred_at %s is stored as %s (sub-millisecond digits truncated)', (occurredAt, iso) => {
    expect(parseOk(eventJson({ occurred_at: occurredAt })).occurredAt.toISOString()).toBe(iso);
  });

  it('never throws, whatever it is given', () => {
    for (const raw of [null, 0, true, Symbol('x'), () => 1, new Map(), Buffer.alloc(0), 10n]) {
      expect(() => parseUsageEvent(raw, NOW)).not.toThrow();
      expect(parseUsageEvent(raw, NOW).ok).toBe(false);
    }
  });
});
