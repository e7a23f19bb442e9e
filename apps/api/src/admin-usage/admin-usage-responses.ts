import { z } from 'zod';
import { dateTime, integerCount, nextCursor, pageOf } from '../common/response-fields';
import { CostBreakdownSchema, TOKEN_COUNTS, TotalsSchema } from '../usage/usage-json';

/** GET /admin/rejected-events */
export const RejectedEventSchema = z
  .object({
    id: z.string(),
    received_at: dateTime,
    source: z.enum(['kafka', 'http']),
    topic: z.string().nullable().describe('Kafka only'),
    partition: z.number().int().nonnegative().nullable().describe('Kafka only'),
    offset: z.string().regex(/^\d+$/).nullable().describe('Kafka only: the message offset, as a string of digits'),
    message_key: z.string().nullable().describe('Kafka only'),
    event_id: z.string().nullable().describe('null when the payload had no usable event_id'),
    reason_code: z.string().describe('e.g. invalid_json, schema, invariant, too_far_in_future, metadata_too_large, storage_error'),
    reason: z.string(),
    raw_payload: z.string().describe('The message exactly as received'),
  })
  .strict();
export const RejectedEventPageSchema = pageOf(RejectedEventSchema);
export type RejectedEventPageJson = z.input<typeof RejectedEventPageSchema>;

/** GET /admin/event-conflicts */
export const EventConflictSchema = z
  .object({
    id: z.string(),
    event_id: z.string(),
    received_at: dateTime,
    source: z.string().describe('kafka or http'),
    existing_hash: z.string().describe('Hash of the stored event (the first one seen stands)'),
    payload_hash: z.string().describe('Hash of this payload (kept here, not counted)'),
    raw_payload: z.string(),
  })
  .strict();
export const EventConflictPageSchema = pageOf(EventConflictSchema);
export type EventConflictPageJson = z.input<typeof EventConflictPageSchema>;

/** GET /admin/unpriced-usage */
export const UnpricedUsageSchema = z
  .object({
    data: z.array(
      z
        .object({
          model: z.string(),
          account_id: z.string(),
          events: integerCount,
          ...TOKEN_COUNTS,
          first_occurred_at: dateTime,
          last_occurred_at: dateTime,
        })
        .strict(),
    ),
  })
  .strict();
export type UnpricedUsageJson = z.input<typeof UnpricedUsageSchema>;

/** GET /admin/usage/accounts */
export const AccountTotalsPageSchema = z
  .object({
    from: dateTime,
    to: dateTime,
    data: z
      .array(z.object({ account_id: z.string(), ...TotalsSchema.shape, ...CostBreakdownSchema.shape }).strict())
      .describe('Largest cost first'),
    next_cursor: nextCursor,
  })
  .strict();
export type AccountTotalsPageJson = z.input<typeof AccountTotalsPageSchema>;
