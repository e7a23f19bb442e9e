import { Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ALERT_EVENT_TYPES } from '@tokenmeter/limits';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { encodeCursor, idCursor, idFilter, pageLimit, ValidBody, ValidParam, ValidQuery } from '../common/validation';
import { WebhooksAdminService } from './webhooks-admin.service';
import {
  CreatedWebhookEndpointSchema,
  RotatedSecretSchema,
  WebhookDeliveryDetailSchema,
  WebhookDeliveryPageSchema,
  WebhookDeliverySchema,
  WebhookEndpointListSchema,
  WebhookEndpointSchema,
  webhookDeliveryDetailJson,
  webhookDeliveryJson,
  webhookEndpointJson,
} from './webhooks-json';

const URL_RULE = 'must be an absolute http:// or https:// URL of at most 2048 characters';

// Normalised by the WHATWG parser before it is stored, so what is sent is exactly what is listed
// (control characters in a path are percent-encoded; a NUL cannot reach the database).
const webhookUrl = z
  .string({ invalid_type_error: URL_RULE })
  .max(2048, URL_RULE)
  .transform((text, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.href.length > 2048) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: URL_RULE });
      return z.NEVER;
    }
    return url.href;
  })
  .describe('Where alerts are POSTed; http or https');

const EVENT_CHOICES = [...ALERT_EVENT_TYPES, '*'] as const;
const EVENT_RULE = `must be one of ${EVENT_CHOICES.map((e) => `"${e}"`).join(', ')}`;

const createBody = z
  .object({
    url: webhookUrl,
    events: z
      .array(z.enum(EVENT_CHOICES, { errorMap: () => ({ message: EVENT_RULE }) }), { invalid_type_error: 'must be an array of event types' })
      .min(1, 'must name at least one event type ("*" for all)')
      .max(EVENT_CHOICES.length * 4, 'has too many entries')
      .transform((events) => [...new Set(events)])
      .describe('Event types to receive; "*" is every type (also ones added later)'),
  })
  .strict();

/**
 * Delivery ids are BIGINT: a larger number is refused here rather than by the database (a 500).
 * zod runs the refinement even when the pattern failed, so it checks the pattern itself first.
 */
const deliveryId = z
  .string({ invalid_type_error: 'must be given once, as a string' })
  .regex(/^\d{1,19}$/, 'must be a delivery id (digits)')
  .refine((id) => !/^\d{1,19}$/.test(id) || BigInt(id) <= 9223372036854775807n, 'must be a delivery id (digits)');

const deliveriesQuery = z.object({
  limit: pageLimit,
  cursor: idCursor,
  status: z
    .enum(['pending', 'delivered', 'failed'], { errorMap: () => ({ message: 'must be one of pending, delivered, failed' }) })
    .optional(),
});

@ApiTags('admin: webhooks')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/webhooks')
export class WebhookEndpointsController {
  constructor(private readonly webhooks: WebhooksAdminService) {}

  @Post()
  @ApiOperation({
    summary: 'Register a webhook endpoint for budget alerts',
    description: [
      'Alerts are POSTed as JSON, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).',
      'The answer carries `secret` (whsec_...) exactly once: keep it to verify the signatures.',
      'Failed requests (non-2xx, no answer, timeout) are retried with back-off; see docs/limits.md "Webhooks".',
    ].join(' '),
  })
  @ApiAnswer(CreatedWebhookEndpointSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS)
  async create(@ValidBody(createBody) b: z.output<typeof createBody>, @CurrentActor() actor: Actor): Promise<z.input<typeof CreatedWebhookEndpointSchema>> {
    const created = await this.webhooks.createEndpoint({ url: b.url, events: b.events }, actor);
    return { ...webhookEndpointJson(created), secret: created.secret };
  }

  @Get()
  @ApiOperation({ summary: 'Webhook endpoints (never their secrets), oldest first' })
  @ApiAnswer(WebhookEndpointListSchema)
  @errorResponses(...ADMIN_ERRORS)
  async list(): Promise<z.input<typeof WebhookEndpointListSchema>> {
    return { data: (await this.webhooks.listEndpoints()).map((e) => webhookEndpointJson(e)) };
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Delete a webhook endpoint',
    description: 'It receives nothing more; its pending deliveries are given up (failed, "endpoint deleted"). Its delivery log stays readable.',
  })
  @ApiAnswer(WebhookEndpointSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async remove(@ValidParam('id', idFilter) id: string, @CurrentActor() actor: Actor) {
    return webhookEndpointJson(await this.webhooks.deleteEndpoint(id, actor));
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiOperation({
    summary: "Rotate an endpoint's signing secret",
    description:
      'Answers the new secret once. Until previous_secret_expires_at (WEBHOOK_SECRET_OVERLAP_HOURS, default 24) every request carries two signatures, one per secret, space-separated, so the receiver can switch secrets at any moment in between.',
  })
  @ApiAnswer(RotatedSecretSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async rotate(@ValidParam('id', idFilter) id: string, @CurrentActor() actor: Actor): Promise<z.input<typeof RotatedSecretSchema>> {
    const rotated = await this.webhooks.rotateSecret(id, actor);
    return { id: rotated.id, secret: rotated.secret, previous_secret_expires_at: rotated.previousSecretExpiresAt!.toISOString() };
  }

  @Get(':id/deliveries')
  @ApiOperation({ summary: "An endpoint's deliveries, newest first (one per message)" })
  @ApiAnswer(WebhookDeliveryPageSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async deliveries(@ValidParam('id', idFilter) id: string, @ValidQuery(deliveriesQuery) q: z.output<typeof deliveriesQuery>) {
    const rows = await this.webhooks.listDeliveries({ endpointId: id, status: q.status, beforeId: q.cursor, limit: q.limit });
    const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
    return { data: rows.map(webhookDeliveryJson), next_cursor: last ? encodeCursor([last.id]) : null } satisfies z.input<typeof WebhookDeliveryPageSchema>;
  }
}

@ApiTags('admin: webhooks')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/webhook-deliveries')
export class WebhookDeliveriesController {
  constructor(private readonly webhooks: WebhooksAdminService) {}

  @Get(':id')
  @ApiOperation({ summary: 'One delivery, its exact body and every attempt (status, error, duration)' })
  @ApiAnswer(WebhookDeliveryDetailSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async get(@ValidParam('id', deliveryId) id: string) {
    const { delivery, attempts } = await this.webhooks.getDelivery(id);
    return webhookDeliveryDetailJson(delivery, attempts);
  }

  @Post(':id/resend')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Send a delivery again',
    description:
      'Pending again and due now, with the same webhook-id (receivers deduplicate on it) and a fresh retry schedule, whatever its status. 409 when its endpoint is deleted.',
  })
  @ApiAnswer(WebhookDeliverySchema)
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  async resend(@ValidParam('id', deliveryId) id: string, @CurrentActor() actor: Actor) {
    return webhookDeliveryJson(await this.webhooks.resendDelivery(id, actor));
  }
}
