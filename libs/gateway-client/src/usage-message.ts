import { parseUsageEvent, type Rejection } from '@tokenmeter/billing/usage-event';
import type { Envelope } from '@tokenmeter/billing/usage-schemas';
import { EVENT_ID_NAMESPACE, eventIdForRequest } from './event-id';

/**
 * A usage event as the gateway hands it over: the gateway.usage.v1 fields (docs/event-contract.md),
 * with `event_id` optional (minted from `request_id` when absent), `occurred_at` also as a Date
 * (sent as its ISO string, which is RFC 3339 in UTC), and `usage` / `metadata` any object type, so
 * a provider SDK's usage interface goes in as it is.
 */
export type UsageEventInput = Omit<Envelope, 'event_id' | 'occurred_at' | 'usage' | 'metadata'> & {
  event_id?: string | null;
  occurred_at: string | Date;
  usage: object;
  metadata?: object | null;
};

/** A validated event, ready for the topic: the bytes the ingestor will parse, keyed as the contract says. */
export interface UsageMessage {
  eventId: string;
  /** The event's account_id: every event of an account goes to one partition, in order. */
  key: string;
  /** The event as JSON, exactly as it is validated here and parsed by the ingestor. */
  value: string;
}

export type PreparedMessage = { ok: true; message: UsageMessage } | { ok: false; rejection: Rejection };

// Any object JSON.stringify writes as one (a class instance too: its own fields are what is sent).
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Mints the event_id if needed, serialises the event and validates those bytes with the ingestor's
 * own parser (libs/billing parseUsageEvent) at `now`, so an event refused here is one the ingestor
 * would refuse with the same code and reason, and one accepted here it accepts (unless it arrives
 * more than five minutes before its occurred_at, by the ingestor's clock).
 */
export function prepareUsageMessage(event: UsageEventInput, now: Date, namespace: string = EVENT_ID_NAMESPACE): PreparedMessage {
  const input: unknown = event;
  let body = input;
  if (isObject(input) && (input.event_id === undefined || input.event_id === null)) {
    if (typeof input.request_id === 'string' && input.request_id.length > 0) body = { ...input, event_id: eventIdForRequest(input.request_id, namespace) };
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch {
    // Not serialisable (a BigInt, a cycle): the parser turns the object itself into its invalid_json rejection.
  }
  const parsed = parseUsageEvent(text ?? body, now);
  if (!parsed.ok) return { ok: false, rejection: parsed.rejection };
  return { ok: true, message: { eventId: parsed.event.eventId, key: parsed.event.accountId, value: text! } };
}
