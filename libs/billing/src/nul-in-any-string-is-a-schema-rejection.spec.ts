import { NOW, eventObject } from './__fixtures__/usage-events';
import { parseUsageEvent } from './usage-event';

// Postgres text and jsonb cannot hold NUL: an event carrying one used to pass validation and fail
// at storage (a 500 over HTTP, a storage_error dead letter from Kafka). It is now a schema
// rejection, whichever string or key holds it, from either entry path.
describe('a NUL (\\u0000) anywhere in an event is a schema rejection', () => {
  it.each([
    ['the model', { model: 'deep\u0000seek' }],
    ['the request id', { request_id: 'req\u0000' }],
    ['a metadata value', { metadata: { note: 'a\u0000b' } }],
    ['a metadata key', { metadata: { 'k\u0000': 1 } }],
    ['a nested metadata array', { metadata: { tags: ['ok', ['\u0000']] } }],
  ])('in %s', (_where, overrides) => {
    const event: Record<string, unknown> = { ...eventObject(), ...overrides };
    for (const raw of [event, JSON.stringify(event), Buffer.from(JSON.stringify(event))]) {
      const result = parseUsageEvent(raw, NOW);
      expect(result).toMatchObject({ ok: false, rejection: { code: 'schema', eventId: event.event_id } });
      if (!result.ok) expect(result.rejection.reason).toMatch(/NUL/);
    }
  });

  it('the six characters \\u0000 written as text (an escaped backslash) are data, not NUL', () => {
    const event = { ...eventObject(), metadata: { path: 'C:\\u0000' } };
    expect(JSON.stringify(event)).toContain('\\\\u0000');
    expect(parseUsageEvent(JSON.stringify(event), NOW).ok).toBe(true);
  });
});
