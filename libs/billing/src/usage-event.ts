import { canonicalHash } from './canonical-json';
import { parseRfc3339Ms } from './rfc3339';
import { normaliseUsage, type TokenCounts, type UsageFormat } from './usage-shapes';
import { validateEnvelope } from './usage-schemas';
import { describeIssues } from './zod-issues';

/**
 * Headers of a dead letter: the ingestor parks each message it rejects on the dead-letter topic
 * (config.kafka.dlqTopic, `<usage topic>.dlq`) with these (docs/event-contract.md). The topic
 * names themselves are configuration (KAFKA_USAGE_TOPIC, KAFKA_DLQ_TOPIC), not constants.
 */
export const DLQ_HEADERS = {
  rejectCode: 'x-reject-code',
  rejectReason: 'x-reject-reason',
  originalTopic: 'x-original-topic',
  originalPartition: 'x-original-partition',
  originalOffset: 'x-original-offset',
} as const;

/** occurred_at may be at most this far after the receive time (gateway clock skew allowance). */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;
/** Limit on JSON.stringify(metadata), in UTF-8 bytes. */
export const MAX_METADATA_BYTES = 4096;

export interface UsageEvent {
  eventId: string;
  occurredAt: Date;
  accountId: string;
  apiKeyId: string | null;
  model: string;
  requestId: string | null;
  tokens: TokenCounts;
  /** The usage object exactly as sent (provider shape, unknown keys included). */
  usageRaw: unknown;
  usageFormat: UsageFormat;
  metadata: Record<string, unknown> | null;
  /** Lowercase hex sha256 of the canonical JSON (keys sorted recursively) of the whole event object. */
  payloadHash: string;
}

export type RejectionCode = 'invalid_json' | 'schema' | 'invariant' | 'too_far_in_future' | 'metadata_too_large';

export interface Rejection {
  code: RejectionCode;
  /** Human-readable and names the field, e.g. "usage.prompt_tokens is required". */
  reason: string;
  /** The event_id, if one could be read from the payload. */
  eventId: string | null;
}

export type ParseResult = { ok: true; event: UsageEvent } | { ok: false; rejection: Rejection };

function reject(code: RejectionCode, reason: string, eventId: string | null): ParseResult {
  return { ok: false, rejection: { code, reason, eventId } };
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

function truncate(text: string, maxChars: number): string {
  return text.length > maxChars ? text.slice(0, maxChars) + '...' : text;
}

/**
 * Parses and validates one gateway usage event (docs/event-contract.md).
 *
 * `raw` is the Kafka message value (string or Buffer, JSON-parsed here) or an already-parsed
 * HTTP body. Bad input never throws: it comes back as a Rejection whose code tells the
 * ingestor what to do with it. `now` is the receive time, used only for the future-skew check.
 *
 * Checks run in this order and the first failure wins:
 * invalid_json -> schema (envelope, occurred_at format, usage shape) -> invariant (counts)
 * -> metadata_too_large -> too_far_in_future.
 */
export function parseUsageEvent(raw: string | Buffer | unknown, now: Date): ParseResult {
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else if (Buffer.isBuffer(raw)) {
    text = raw.toString('utf8');
  } else {
    // An HTTP body goes through the same JSON text as a Kafka message, so both paths hash and
    // validate identically and the event never aliases the caller's object.
    let serialised: string | undefined;
    try {
      serialised = JSON.stringify(raw);
    } catch (error) {
      return reject('invalid_json', `payload is not JSON-serialisable: ${(error as Error).message}`, null);
    }
    if (serialised === undefined) return reject('invalid_json', 'payload is empty', null);
    text = serialised;
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return reject('invalid_json', `payload is not valid JSON: ${truncate((error as Error).message, 200)}`, null);
  }
  // JSON can carry NUL only as the escape \u0000, so events without that text skip the walk.
  return validateEvent(parsed, now, text.includes('\\u0000'));
}

/** True if any string or key in a JSON value holds NUL, which Postgres text and jsonb refuse. */
function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) if (key.includes('\u0000') || containsNul(inner)) return true;
  }
  return false;
}

function validateEvent(parsed: unknown, now: Date, mayHoldNul: boolean): ParseResult {
  if (typeName(parsed) !== 'object') {
    return reject('schema', `event must be a JSON object (got ${typeName(parsed)})`, null);
  }
  const input = parsed as Record<string, unknown>;
  const eventIdHint =
    typeof input.event_id === 'string' && input.event_id.length > 0 && input.event_id.length <= 128
      ? input.event_id
      : null;

  const envelope = validateEnvelope(input);
  if (!envelope.success) return reject('schema', describeIssues(envelope.issues), eventIdHint);
  const fields = envelope.data;
  if (mayHoldNul && containsNul(input)) {
    return reject('schema', 'a string or key in the event contains NUL (\\u0000), which cannot be stored', fields.event_id);
  }

  const occurredAtMs = parseRfc3339Ms(fields.occurred_at);
  if (occurredAtMs === null) {
    return reject(
      'schema',
      `occurred_at must be an RFC 3339 date-time with a timezone (Z or +hh:mm), e.g. 2025-01-01T12:00:00.123Z ` +
        `(got ${JSON.stringify(truncate(fields.occurred_at, 64))})`,
      fields.event_id,
    );
  }

  // Normalise and keep the usage object exactly as it was sent (not a validator's copy of it).
  const usageRaw = input.usage as Record<string, unknown>;
  const usage = normaliseUsage(usageRaw);
  if (!usage.ok) return reject(usage.code, usage.reason, fields.event_id);

  const metadata = (input.metadata ?? null) as Record<string, unknown> | null;
  if (metadata !== null) {
    const metadataBytes = Buffer.byteLength(JSON.stringify(metadata), 'utf8');
    if (metadataBytes > MAX_METADATA_BYTES) {
      return reject(
        'metadata_too_large',
        `metadata is ${metadataBytes} bytes as JSON; at most ${MAX_METADATA_BYTES} are allowed`,
        fields.event_id,
      );
    }
  }

  const aheadMs = occurredAtMs - now.getTime();
  if (aheadMs > MAX_FUTURE_SKEW_MS) {
    return reject(
      'too_far_in_future',
      `occurred_at (${fields.occurred_at}) is ${aheadMs / 1000}s after the receive time ` +
        `(${now.toISOString()}); at most ${MAX_FUTURE_SKEW_MS / 1000}s of clock skew is accepted`,
      fields.event_id,
    );
  }

  return {
    ok: true,
    event: {
      eventId: fields.event_id,
      occurredAt: new Date(occurredAtMs),
      accountId: fields.account_id,
      apiKeyId: fields.api_key_id ?? null,
      model: fields.model,
      requestId: fields.request_id ?? null,
      tokens: usage.tokens,
      usageRaw,
      usageFormat: usage.format,
      metadata,
      // Hashed last, so only accepted events pay for it (it costs about as much as JSON.parse).
      payloadHash: canonicalHash(parsed),
    },
  };
}
