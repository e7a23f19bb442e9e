import type { Pool } from 'pg';
import type { WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint } from './generated/prisma/client';
import { prismaFor, type Queryable } from './transactor';

/**
 * Standard Webhooks endpoints, one delivery per (endpoint, message), and every attempt
 * (docs/limits.md "Webhooks"). Prisma for the single-row CRUD the admin API does; pg for the
 * notifier's set-based enqueue and claims.
 */

export interface WebhookEndpointRecord {
  id: string;
  url: string;
  /** Event types it receives; "*" is every type. */
  events: string[];
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  deletedAt: Date | null;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveryRecord {
  id: string;
  endpointId: string;
  messageId: string;
  eventType: string;
  body: string;
  status: WebhookDeliveryStatus;
  /** Attempts since the delivery was created or last resent (the attempt log keeps every one). */
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
}

export interface WebhookAttemptRecord {
  id: string;
  deliveryId: string;
  attemptedAt: Date;
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** A message to fan out to every endpoint subscribed to its type. */
export interface OutgoingWebhookMessage {
  messageId: string;
  eventType: string;
  body: string;
}

/** A due delivery leased to one deliverer until `leaseUntil` (also the fencing token of its outcome). */
export interface LeasedDelivery {
  id: string;
  endpointId: string;
  messageId: string;
  body: string;
  attempts: number;
  url: string;
  /** The endpoint's secret, then the previous one while its overlap lasts: each signs. */
  secrets: string[];
  leaseUntil: Date;
  /** Deleted after this delivery was queued (a delete racing the dispatcher's enqueue): give it up, do not send it. */
  endpointDeleted: boolean;
}

export interface AttemptOutcome {
  status: number | null;
  error: string | null;
  durationMs: number;
  delivered: boolean;
  /** Null: that was the last attempt (the delivery fails); otherwise when to try again. */
  retryInMs: number | null;
}

export interface DeliveryListFilter {
  endpointId: string;
  status?: WebhookDeliveryStatus;
  /** Exclusive: deliveries with a smaller id (the previous page's last id). */
  beforeId?: string;
  limit: number;
}

export class WebhooksRepository {
  constructor(private readonly pool: Pool) {}

  // --- endpoints (Prisma) -------------------------------------------------------------------

  async createEndpoint(e: { id: string; url: string; events: string[]; secret: string }, q: Queryable = this.pool): Promise<WebhookEndpointRecord> {
    return endpointOf(await prismaFor(this.pool, q).webhookEndpoint.create({ data: e }));
  }

  /** Endpoints not deleted, oldest first. */
  async listEndpoints(q: Queryable = this.pool): Promise<WebhookEndpointRecord[]> {
    const rows = await prismaFor(this.pool, q).webhookEndpoint.findMany({ where: { deletedAt: null }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    return rows.map(endpointOf);
  }

  /** An endpoint that is not deleted. */
  async getEndpoint(id: string, q: Queryable = this.pool): Promise<WebhookEndpointRecord | undefined> {
    const row = await prismaFor(this.pool, q).webhookEndpoint.findFirst({ where: { id, deletedAt: null } });
    return row ? endpointOf(row) : undefined;
  }

  /** Any endpoint, deleted ones included (a delivery's log outlives its endpoint). */
  async getEndpointEvenDeleted(id: string, q: Queryable = this.pool): Promise<WebhookEndpointRecord | undefined> {
    const row = await prismaFor(this.pool, q).webhookEndpoint.findUnique({ where: { id } });
    return row ? endpointOf(row) : undefined;
  }

  /**
   * Soft-deletes an endpoint and gives up on its pending deliveries (nothing would ever send
   * them). Its deliveries and their attempts stay readable.
   */
  async deleteEndpoint(id: string, q: Queryable = this.pool): Promise<void> {
    const prisma = prismaFor(this.pool, q);
    await prisma.$executeRaw`UPDATE webhook_endpoints SET deleted_at = now() WHERE id = ${id} AND deleted_at IS NULL`;
    await prisma.$executeRaw`UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = 'endpoint deleted'
                              WHERE endpoint_id = ${id} AND status = 'pending'`;
  }

  /**
   * A new secret; the current one becomes the previous one and keeps signing for `overlapHours`
   * (by the database clock, which the deliverer's claim reads too). A second rotation within the
   * overlap drops the oldest secret.
   */
  async rotateSecret(id: string, newSecret: string, overlapHours: number, q: Queryable = this.pool): Promise<WebhookEndpointRecord | undefined> {
    const prisma = prismaFor(this.pool, q);
    const changed = await prisma.$executeRaw`UPDATE webhook_endpoints
        SET previous_secret = secret, secret = ${newSecret}, previous_secret_expires_at = now() + make_interval(hours => ${overlapHours}::int)
      WHERE id = ${id} AND deleted_at IS NULL`;
    return changed === 0 ? undefined : this.getEndpoint(id, q);
  }

  // --- deliveries: the notifier (pg, set-based) ------------------------------------------------

  /**
   * One pending delivery per (endpoint subscribed to the message's type, message), due now. The
   * unique (endpoint_id, message_id) makes it exactly one even when a message is enqueued again
   * (a dispatcher that crashed before its commit, then the next one). Returns the rows inserted.
   */
  async enqueueDeliveries(messages: readonly OutgoingWebhookMessage[], q: Queryable): Promise<number> {
    if (messages.length === 0) return 0;
    const { rowCount } = await q.query(
      `INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, body)
       SELECT e.id, m.message_id, m.event_type, m.body
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS m(message_id, event_type, body, n)
         JOIN webhook_endpoints e ON e.deleted_at IS NULL AND (m.event_type = ANY(e.events) OR '*' = ANY(e.events))
        ORDER BY m.n, e.id
       ON CONFLICT (endpoint_id, message_id) DO NOTHING`,
      [messages.map((m) => m.messageId), messages.map((m) => m.eventType), messages.map((m) => m.body)],
    );
    return rowCount ?? 0;
  }

  /**
   * Leases up to `limit` due deliveries (pending, next_attempt_at <= now) by pushing their
   * next_attempt_at `leaseMs` ahead, in one autocommitted statement: the POST then happens
   * outside any transaction, and a deliverer that dies mid-request leaves a delivery that is due
   * again when its lease runs out. SKIP LOCKED: concurrent deliverers lease different rows.
   */
  async leaseDueDeliveries(limit: number, leaseMs: number): Promise<LeasedDelivery[]> {
    const { rows } = await this.pool.query(
      `WITH due AS (
         SELECT d.id FROM webhook_deliveries d
          WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          ORDER BY d.next_attempt_at, d.id
          LIMIT $1
            FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_deliveries d
          SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
         FROM due, webhook_endpoints e
        WHERE d.id = due.id AND e.id = d.endpoint_id
       RETURNING d.id::text AS id, d.endpoint_id, d.message_id, d.body, d.attempts, e.url, e.secret,
                 CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
                 d.next_attempt_at AS lease_until, e.deleted_at IS NOT NULL AS endpoint_deleted`,
      [limit, leaseMs],
    );
    return rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      messageId: r.message_id,
      body: r.body,
      attempts: r.attempts,
      url: r.url,
      secrets: r.previous_secret ? [r.secret, r.previous_secret] : [r.secret],
      leaseUntil: r.lease_until,
      endpointDeleted: r.endpoint_deleted,
    }));
  }

  /**
   * Logs one attempt and, if the delivery still holds this lease (nobody resent or deleted it
   * meanwhile), moves it on: delivered, due again after `retryInMs`, or failed. One statement,
   * so the log and the state never disagree. The attempt is logged either way: it happened.
   */
  async recordAttempt(d: Pick<LeasedDelivery, 'id' | 'leaseUntil'>, o: AttemptOutcome): Promise<void> {
    await this.pool.query(
      `WITH moved AS (
         UPDATE webhook_deliveries
            SET attempts = attempts + 1,
                last_status = $3,
                last_error = $4,
                status = CASE WHEN $6 THEN 'delivered' WHEN $7::double precision IS NULL THEN 'failed' ELSE 'pending' END,
                delivered_at = CASE WHEN $6 THEN now() END,
                next_attempt_at = CASE WHEN $6 OR $7::double precision IS NULL THEN NULL
                                       ELSE now() + make_interval(secs => $7::double precision / 1000) END
          WHERE id = $1::bigint AND status = 'pending' AND next_attempt_at = $2
         RETURNING id
       )
       INSERT INTO webhook_delivery_attempts (delivery_id, status, error, duration_ms) VALUES ($1::bigint, $3, $4, $5)`,
      [d.id, d.leaseUntil, o.status, o.error, Math.max(0, Math.round(o.durationMs)), o.delivered, o.retryInMs],
    );
  }

  /** Fails a leased delivery without an attempt (its endpoint is gone), if it still holds the lease. */
  async giveUpDelivery(d: Pick<LeasedDelivery, 'id' | 'leaseUntil'>, reason: string): Promise<void> {
    await this.pool.query(
      `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $3
        WHERE id = $1::bigint AND status = 'pending' AND next_attempt_at = $2`,
      [d.id, d.leaseUntil, reason],
    );
  }

  // --- deliveries: the admin API (Prisma) ------------------------------------------------------

  /** An endpoint's deliveries, newest first, keyset-paginated by id. */
  async listDeliveries(filter: DeliveryListFilter): Promise<WebhookDeliveryRecord[]> {
    const rows = await prismaFor(this.pool, this.pool).webhookDelivery.findMany({
      where: {
        endpointId: filter.endpointId,
        status: filter.status,
        id: filter.beforeId === undefined ? undefined : { lt: BigInt(filter.beforeId) },
      },
      orderBy: { id: 'desc' },
      take: filter.limit,
    });
    return rows.map(deliveryOf);
  }

  async getDelivery(id: string, q: Queryable = this.pool): Promise<WebhookDeliveryRecord | undefined> {
    const row = await prismaFor(this.pool, q).webhookDelivery.findUnique({ where: { id: BigInt(id) } });
    return row ? deliveryOf(row) : undefined;
  }

  /** A delivery's attempts, oldest first. */
  async listAttempts(deliveryId: string, q: Queryable = this.pool): Promise<WebhookAttemptRecord[]> {
    const rows = await prismaFor(this.pool, q).webhookDeliveryAttempt.findMany({ where: { deliveryId: BigInt(deliveryId) }, orderBy: { id: 'asc' } });
    return rows.map(attemptOf);
  }

  /**
   * Pending again and due now, with the same message id (receivers deduplicate on it) and a fresh
   * retry schedule. An attempt in flight under the old lease still gets logged, but no longer
   * moves the delivery (recordAttempt's lease check).
   */
  async resendDelivery(id: string, q: Queryable = this.pool): Promise<WebhookDeliveryRecord | undefined> {
    const prisma = prismaFor(this.pool, q);
    await prisma.$executeRaw`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL
                              WHERE id = ${BigInt(id)}`;
    return this.getDelivery(id, q);
  }
}

function endpointOf(r: WebhookEndpoint): WebhookEndpointRecord {
  return {
    id: r.id,
    url: r.url,
    events: r.events,
    secret: r.secret,
    previousSecret: r.previousSecret,
    previousSecretExpiresAt: r.previousSecretExpiresAt,
    createdAt: r.createdAt,
    deletedAt: r.deletedAt,
  };
}

function deliveryOf(r: WebhookDelivery): WebhookDeliveryRecord {
  return {
    id: r.id.toString(),
    endpointId: r.endpointId,
    messageId: r.messageId,
    eventType: r.eventType,
    body: r.body,
    status: r.status as WebhookDeliveryStatus,
    attempts: r.attempts,
    nextAttemptAt: r.nextAttemptAt,
    lastStatus: r.lastStatus,
    lastError: r.lastError,
    deliveredAt: r.deliveredAt,
    createdAt: r.createdAt,
  };
}

function attemptOf(r: WebhookDeliveryAttempt): WebhookAttemptRecord {
  return { id: r.id.toString(), deliveryId: r.deliveryId.toString(), attemptedAt: r.attemptedAt, status: r.status, error: r.error, durationMs: r.durationMs };
}
