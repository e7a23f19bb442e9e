import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '@tokenmeter/billing';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import {
  AuditLogRepository,
  BudgetAlertsRepository,
  Transactor,
  WebhooksRepository,
  type BudgetAlertListFilter,
  type BudgetAlertRecord,
  type DeliveryListFilter,
  type WebhookAttemptRecord,
  type WebhookDeliveryRecord,
  type WebhookEndpointRecord,
} from '@tokenmeter/db';
import { newWebhookSecret } from '@tokenmeter/limits';
import type { Actor } from '../common/actor';
import { webhookDeliveryJson, webhookEndpointJson } from './webhooks-json';

/**
 * Webhook endpoints, their delivery log and resends, and the budget alerts list. Every write and
 * its audit entry commit in one transaction. Secrets are returned to the caller of create and
 * rotate only, and never written to the audit log.
 */
@Injectable()
export class WebhooksAdminService {
  constructor(
    private readonly webhooks: WebhooksRepository,
    private readonly alerts: BudgetAlertsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
    @Inject(CONFIG) private readonly config: TokenmeterConfig,
  ) {}

  async createEndpoint(input: { url: string; events: string[] }, actor: Actor): Promise<WebhookEndpointRecord> {
    return this.transactor.run(async (q) => {
      const created = await this.webhooks.createEndpoint({ id: `wh_${randomBytes(10).toString('hex')}`, url: input.url, events: input.events, secret: newWebhookSecret() }, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'webhook.create', targetType: 'webhook_endpoint', targetId: created.id, before: null, after: webhookEndpointJson(created), requestId: actor.requestId },
        q,
      );
      return created;
    });
  }

  listEndpoints(): Promise<WebhookEndpointRecord[]> {
    return this.webhooks.listEndpoints();
  }

  async deleteEndpoint(id: string, actor: Actor): Promise<WebhookEndpointRecord> {
    return this.transactor.run(async (q) => {
      const endpoint = await this.webhooks.getEndpoint(id, q);
      if (!endpoint) throw new NotFoundError('webhook endpoint', id);
      await this.webhooks.deleteEndpoint(id, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'webhook.delete', targetType: 'webhook_endpoint', targetId: id, before: webhookEndpointJson(endpoint), after: null, requestId: actor.requestId },
        q,
      );
      return endpoint;
    });
  }

  /** A new secret; the previous one keeps signing for WEBHOOK_SECRET_OVERLAP_HOURS. */
  async rotateSecret(id: string, actor: Actor): Promise<WebhookEndpointRecord> {
    return this.transactor.run(async (q) => {
      const before = await this.webhooks.getEndpoint(id, q);
      if (!before) throw new NotFoundError('webhook endpoint', id);
      const rotated = await this.webhooks.rotateSecret(id, newWebhookSecret(), this.config.webhooks.secretOverlapHours, q);
      if (!rotated) throw new NotFoundError('webhook endpoint', id);
      await this.audit.append(
        {
          actorKeyId: actor.keyId,
          action: 'webhook.rotate_secret',
          targetType: 'webhook_endpoint',
          targetId: id,
          before: webhookEndpointJson(before),
          after: webhookEndpointJson(rotated),
          requestId: actor.requestId,
        },
        q,
      );
      return rotated;
    });
  }

  /** An endpoint's deliveries; a deleted endpoint's log stays readable. */
  async listDeliveries(filter: DeliveryListFilter): Promise<WebhookDeliveryRecord[]> {
    if (!(await this.webhooks.getEndpointEvenDeleted(filter.endpointId))) throw new NotFoundError('webhook endpoint', filter.endpointId);
    return this.webhooks.listDeliveries(filter);
  }

  async getDelivery(id: string): Promise<{ delivery: WebhookDeliveryRecord; attempts: WebhookAttemptRecord[] }> {
    const delivery = await this.webhooks.getDelivery(id);
    if (!delivery) throw new NotFoundError('webhook delivery', id);
    return { delivery, attempts: await this.webhooks.listAttempts(id) };
  }

  /** Pending again and due now, same message id, a fresh retry schedule. Refused for a deleted endpoint. */
  async resendDelivery(id: string, actor: Actor): Promise<WebhookDeliveryRecord> {
    return this.transactor.run(async (q) => {
      const before = await this.webhooks.getDelivery(id, q);
      if (!before) throw new NotFoundError('webhook delivery', id);
      if (!(await this.webhooks.getEndpoint(before.endpointId, q))) {
        throw new ConflictError(`webhook delivery ${id}: its endpoint ${before.endpointId} is deleted`);
      }
      const after = (await this.webhooks.resendDelivery(id, q))!;
      await this.audit.append(
        {
          actorKeyId: actor.keyId,
          action: 'webhook_delivery.resend',
          targetType: 'webhook_delivery',
          targetId: id,
          before: webhookDeliveryJson(before),
          after: webhookDeliveryJson(after),
          requestId: actor.requestId,
        },
        q,
      );
      return after;
    });
  }

  listAlerts(filter: BudgetAlertListFilter): Promise<BudgetAlertRecord[]> {
    return this.alerts.listAlerts(filter);
  }
}
