import { parseUsageEvent, type ParseResult, type Rejection, type UsageEvent } from '../usage-event';

/** The receive time every spec parses at. */
export const NOW = new Date('2025-06-01T12:00:00.000Z');

/** A valid gateway.usage.v1 event as a plain object; override or delete fields per scenario. */
export function eventObject(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    event_id: 'evt_01J0000000000000000000',
    occurred_at: '2025-06-01T11:59:30.250Z',
    account_id: 'acct_acme',
    api_key_id: 'key_prod_1',
    model: 'deepseek-r1',
    request_id: 'req_abc',
    usage: { input_tokens: 100, output_tokens: 20 },
    metadata: { route: '/v1/chat/completions' },
    ...overrides,
  };
  for (const [key, value] of Object.entries(overrides)) if (value === undefined) delete event[key];
  return event;
}

export function eventJson(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(eventObject(overrides));
}

export function parseOk(raw: unknown, now: Date = NOW): UsageEvent {
  const result: ParseResult = parseUsageEvent(raw, now);
  if (!result.ok) throw new Error(`expected the event to parse, got ${result.rejection.code}: ${result.rejection.reason}`);
  return result.event;
}

export function parseRejected(raw: unknown, now: Date = NOW): Rejection {
  const result: ParseResult = parseUsageEvent(raw, now);
  if (result.ok) throw new Error('expected a rejection, but the event parsed');
  return result.rejection;
}

/** Parses an event whose only non-default field is `usage`. */
export function withUsage(usage: unknown): ParseResult {
  return parseUsageEvent(eventJson({ usage }), NOW);
}
