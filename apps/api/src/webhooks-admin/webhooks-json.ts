import { z } from 'zod';
import { percentage, usd } from '@tokenmeter/billing';
import type { BudgetAlertRecord, WebhookAttemptRecord, WebhookDeliveryRecord, WebhookEndpointRecord } from '@tokenmeter/db';
import { alertMessageId } from '@tokenmeter/limits';
import { dateTime, listOf, pageOf, usdAmount } from '../common/response-fields';

// The webhooks and alerts admin JSON (snake_case, decimals as exact strings, RFC 3339 UTC). Each
// shape is a zod schema documented by ApiAnswer; each builder returns `z.input` of its schema.

export const WebhookEndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()).describe('Event types it receives; "*" is every type'),
    created_at: dateTime,
    previous_secret_expires_at: dateTime
      .nullable()
      .describe('While a rotation overlaps: until then requests are signed with the new AND the previous secret; null otherwise'),
  })
  .strict();
export type WebhookEndpointJson = z.input<typeof WebhookEndpointSchema>;
export const WebhookEndpointListSchema = listOf(WebhookEndpointSchema);

const secretField = z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/).describe('The signing secret (whsec_ + base64 of 32 random bytes); shown only in this answer');

export const CreatedWebhookEndpointSchema = WebhookEndpointSchema.extend({ secret: secretField }).strict();
export const RotatedSecretSchema = z.object({ id: z.string(), secret: secretField, previous_secret_expires_at: dateTime }).strict();

/** An endpoint as admins see it: never its secrets. */
export function webhookEndpointJson(e: WebhookEndpointRecord, now: Date = new Date()): WebhookEndpointJson {
  const overlap = e.previousSecret !== null && e.previousSecretExpiresAt !== null && e.previousSecretExpiresAt > now;
  return {
    id: e.id,
    url: e.url,
    events: e.events,
    created_at: e.createdAt.toISOString(),
    previous_secret_expires_at: overlap ? e.previousSecretExpiresAt!.toISOString() : null,
  };
}

const deliveryStatus = z.enum(['pending', 'delivered', 'failed']);

export const WebhookDeliverySchema = z
  .object({
    id: z.string(),
    endpoint_id: z.string(),
    message_id: z.string().describe('webhook-id: the same on every attempt and resend; receivers deduplicate on it'),
    event_type: z.string(),
    status: deliveryStatus.describe('pending (due at next_attempt_at), delivered (a 2xx), failed (gave up after the last retry; resend it)'),
    attempts: z.number().int().nonnegative().describe('Attempts since the delivery was created or last resent'),
    next_attempt_at: dateTime.nullable(),
    last_status: z.number().int().nullable().describe('HTTP status of the last attempt; null when it got no answer'),
    last_error: z.string().nullable(),
    delivered_at: dateTime.nullable(),
    created_at: dateTime,
  })
  .strict();
export type WebhookDeliveryJson = z.input<typeof WebhookDeliverySchema>;
export const WebhookDeliveryPageSchema = pageOf(WebhookDeliverySchema);

export const WebhookAttemptSchema = z
  .object({
    id: z.string(),
    attempted_at: dateTime,
    status: z.number().int().nullable().describe('HTTP status; null: no answer (refused, timed out)'),
    error: z.string().nullable(),
    duration_ms: z.number().int().nonnegative(),
  })
  .strict();

export const WebhookDeliveryDetailSchema = WebhookDeliverySchema.extend({
  body: z.string().describe('The exact JSON body that is signed and sent'),
  attempt_log: z.array(WebhookAttemptSchema).describe('Every attempt, oldest first, resends included'),
}).strict();
export type WebhookDeliveryDetailJson = z.input<typeof WebhookDeliveryDetailSchema>;

export function webhookDeliveryJson(d: WebhookDeliveryRecord): WebhookDeliveryJson {
  return {
    id: d.id,
    endpoint_id: d.endpointId,
    message_id: d.messageId,
    event_type: d.eventType,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
    last_status: d.lastStatus,
    last_error: d.lastError,
    delivered_at: d.deliveredAt?.toISOString() ?? null,
    created_at: d.createdAt.toISOString(),
  };
}

export function webhookDeliveryDetailJson(d: WebhookDeliveryRecord, attempts: WebhookAttemptRecord[]): WebhookDeliveryDetailJson {
  return {
    ...webhookDeliveryJson(d),
    body: d.body,
    attempt_log: attempts.map((a) => ({
      id: a.id,
      attempted_at: a.attemptedAt.toISOString(),
      status: a.status,
      error: a.error,
      duration_ms: a.durationMs,
    })),
  };
}

export const BudgetAlertSchema = z
  .object({
    id: z.string(),
    message_id: z.string().describe('webhook-id of its deliveries and message-id of its Kafka record'),
    budget_id: z.string(),
    account_id: z.string(),
    window_start: dateTime,
    threshold_pct: z.string().regex(/^\d+(\.\d+)?$/).describe('Percent of the limit, a decimal string, e.g. "80"'),
    direction: z.enum(['up', 'down']).describe('up: spend reached the threshold; down: a reprice took it back under'),
    spend_usd: usdAmount.describe('The window spend right after the crossing (exact decimal string)'),
    limit_usd: usdAmount.describe('The limit then (exact decimal string)'),
    created_at: dateTime,
    published_at: dateTime.nullable().describe('When the notifier sent it to Kafka and queued its webhooks; null: not yet'),
  })
  .strict();
export const BudgetAlertPageSchema = pageOf(BudgetAlertSchema);

export function budgetAlertJson(a: BudgetAlertRecord): z.input<typeof BudgetAlertSchema> {
  return {
    id: a.id,
    message_id: alertMessageId(a.id),
    budget_id: a.budgetId,
    account_id: a.accountId,
    window_start: a.windowStart.toISOString(),
    threshold_pct: percentage(a.thresholdPct).toString(),
    direction: a.direction,
    spend_usd: usd(a.spendUsd).toString(),
    limit_usd: usd(a.limitUsd).toString(),
    created_at: a.createdAt.toISOString(),
    published_at: a.publishedAt?.toISOString() ?? null,
  };
}
