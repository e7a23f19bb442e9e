import type { Pool } from 'pg';
import { CompressionTypes, type Producer } from 'kafkajs';
import type { Logger } from '@tokenmeter/config';
import { type BudgetAlertsRepository, pgTransaction, type WebhooksRepository } from '@tokenmeter/db';
import { alertEvent, alertMessageId } from './alert-event';
import { PgListener } from './pg-listener';

/** The channel the ingest transaction NOTIFYs when it inserted budget_alerts rows (docs/limits.md). */
export const ALERTS_CHANNEL = 'tokenmeter_alerts';

export interface AlertsDispatcherOptions {
  databaseUrl: string;
  topic: string;
  batchSize: number;
  pollIntervalMs: number;
  /** Called after a batch committed with new deliveries (the deliverer in the same process wakes). */
  onDeliveriesEnqueued?: () => void;
  /**
   * Fault injection for tests only: runs after the Kafka send and before the commit, as a crash
   * there would. Production code never sets it.
   */
  beforeCommit?: (alertIds: string[]) => Promise<void>;
}

/**
 * Publishes budget alerts from the outbox (budget_alerts, published_at IS NULL), in id order:
 * per batch, in ONE transaction that holds the batch's row locks, it
 *   1. claims the oldest unpublished alerts (FOR UPDATE SKIP LOCKED: several notifiers share the work),
 *   2. sends one Kafka record per alert (key account_id, header message-id alert_<id>) and waits for acks=all,
 *   3. inserts one webhook delivery per subscribed endpoint (ON CONFLICT DO NOTHING),
 *   4. marks the alerts published, and commits.
 * A crash after 2 and before 4 rolls back 3 and 4, and the next claim sends those records again:
 * the Kafka record is at least once (same message id, same bytes), the delivery rows exactly once.
 *
 * It wakes on LISTEN tokenmeter_alerts and on a timer (so a notification lost while the listener
 * reconnects waits at most one poll interval). It only reads the outbox the ingest transaction
 * wrote, in another process, so nothing here can slow ingestion down.
 */
export class AlertsDispatcher {
  private listener: PgListener;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Wakes do nothing until start() (drain() can still be called directly). */
  private listening = false;
  private stopping = false;

  constructor(
    private readonly pool: Pool,
    private readonly alerts: BudgetAlertsRepository,
    private readonly webhooks: WebhooksRepository,
    private readonly producer: Producer,
    private readonly options: AlertsDispatcherOptions,
    private readonly log: Logger,
  ) {
    this.listener = new PgListener(options.databaseUrl, ALERTS_CHANNEL, () => this.wake(), log);
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.listening = true;
    await this.listener.start();
    this.timer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.wake();
  }

  /** Stops waking and waits for the batch in flight to commit (or fail). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.listening = false;
    clearInterval(this.timer);
    await this.listener.stop();
    await this.running;
  }

  /** Runs the outbox until it is empty; a wake during a run runs it once more afterwards. */
  wake(): void {
    if (!this.listening) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(() => undefined)
      .catch((err) => this.log.error({ err }, 'alerts dispatch failed; retrying on the next wake'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Publishes batches until none is left (or it is stopped). Returns how many alerts it published. */
  async drain(): Promise<number> {
    let published = 0;
    for (;;) {
      const n = await this.publishBatch();
      published += n;
      if (n < this.options.batchSize || this.stopping) return published;
    }
  }

  /** One batch, one transaction. Returns the number of alerts published (0: the outbox is empty or locked). */
  async publishBatch(): Promise<number> {
    const { count, deliveries } = await pgTransaction(this.pool, async (q) => {
      const claimed = await this.alerts.claimUnpublished(this.options.batchSize, q);
      if (claimed.length === 0) return { result: { count: 0, deliveries: 0 }, commit: true };
      const messages = claimed.map((a) => {
        const event = alertEvent(a);
        return { alert: a, messageId: alertMessageId(a.id), eventType: event.type, body: JSON.stringify(event) };
      });
      await this.producer.send({
        topic: this.options.topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: messages.map((m) => ({
          key: m.alert.accountId,
          value: m.body,
          headers: { 'message-id': m.messageId, 'event-type': m.eventType },
        })),
      });
      const ids = claimed.map((a) => a.id);
      await this.options.beforeCommit?.(ids);
      const enqueued = await this.webhooks.enqueueDeliveries(messages, q);
      await this.alerts.markPublished(ids, q);
      return { result: { count: claimed.length, deliveries: enqueued }, commit: true };
    });
    if (count > 0) this.log.info({ alerts: count, deliveries }, 'budget alerts published');
    if (deliveries > 0) this.options.onDeliveriesEnqueued?.();
    return count;
  }
}
