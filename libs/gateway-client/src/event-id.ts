import { createHash } from 'node:crypto';

/**
 * The namespace minted event ids live in: UUIDv5 of the event schema's `$id`
 * (docs/usage-event.schema.json) in RFC 9562's URL namespace, so any language reproduces it:
 * Python `uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, 'https://tokenmeter.internal/schemas/gateway.usage.v1.json'), request_id)`.
 */
export const EVENT_ID_NAMESPACE = '7943717a-0c42-52c4-ab95-fcc2d6d76295';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 9562 UUID version 5 (SHA-1 of namespace bytes + name as UTF-8). */
export function uuidV5(namespace: string, name: string): string {
  if (!UUID_PATTERN.test(namespace)) throw new TypeError(`namespace must be a UUID (got ${JSON.stringify(namespace)})`);
  const bytes = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The event_id of the usage report of gateway request `requestId`. Deterministic, so a gateway
 * that retries a report (after a timeout, a restart, a broker error) sends the same event_id and
 * the ingestor stores it once. Request ids must therefore be unique across every gateway that
 * publishes to the topic; gateways whose ids may collide each pass their own namespace (any UUID).
 */
export function eventIdForRequest(requestId: string, namespace: string = EVENT_ID_NAMESPACE): string {
  return uuidV5(namespace, requestId);
}
