import type { Pool } from 'pg';
import { CompressionTypes, type Producer } from 'kafkajs';
import type { Logger } from '@tokenmeter/config';
import { type BudgetAlertsRepository, type CreditAlertsRepository, pgTransaction, type WebhooksRepository } from '@tokenmeter/db';
import { alertEvent, alertMessageId, creditAlertEvent, creditAlertMessageId } from './alert-event';
import { PgListener } from './pg-listener';

/** The channel NOTIFYed when budget_alerts rows (the ingest transaction) or credit_alerts rows (the credit alerts watcher) are inserted. */
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
 * Publishes budget alerts and credit alerts from their outboxes (budget_alerts, credit_alerts,
 * published_at IS NULL), each in id order: per batch, in ONE transaction that holds the batch's
 * row locks, it
 *   1. claims the oldest unpublished alerts of each outbox, up to batchSize each (FOR UPDATE SKIP LOCKED: several notifiers share the work),
 *   2. sends one Kafka record per alert (key account_id, header message-id alert_<id>) and waits for acks=all,
 *   3. inserts one webhook delivery per subscribed endpoint (ON CONFLICT DO NOTHING),
 *   4. marks the alerts published, and commits.
 * A crash after 2 and before 4 rolls back 3 and 4, and the next claim sends those records again:
 * the Kafka record is at least once (same message id, same bytes), the delivery rows exactly once.
 * Budget alerts have message ids alert_<id>, credit alerts credit_alert_<id>.
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
    private readonly creditAlerts: CreditAlertsRepository,
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
      const { count, full } = await this.publishOne();
      published += count;
      if (!full || this.stopping) return published;
    }
  }

  /** One batch, one transaction. Returns the number of alerts published (0: the outboxes are empty or locked). */
  async publishBatch(): Promise<number> {
    return (await this.publishOne()).count;
  }

  private async publishOne(): Promise<{ count: number; full: boolean }> {
    const { count, credit, full, deliveries } = await pgTransaction(this.pool, async (q) => {
      const budget = await this.alerts.claimUnpublished(this.options.batchSize, q);
      const credits = await this.creditAlerts.claimUnpublished(this.options.batchSize, q);
      const batchFull = budget.length === this.options.batchSize || credits.length === this.options.batchSize;
      if (budget.length === 0 && credits.length === 0) return { result: { count: 0, credit: 0, full: false, deliveries: 0 }, commit: true };
      const messages = [
        ...budget.map((a) => {
          const event = alertEvent(a);
          return { accountId: a.accountId, messageId: alertMessageId(a.id), eventType: event.type as string, body: JSON.stringify(event) };
        }),
        ...credits.map((a) => {
          const event = creditAlertEvent(a);
          return { accountId: a.accountId, messageId: creditAlertMessageId(a.id), eventType: event.type as string, body: JSON.stringify(event) };
        }),
      ];
      await this.producer.send({
        topic: this.options.topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: messages.map((m) => ({
          key: m.accountId,
          value: m.body,
          headers: { 'message-id': m.messageId, 'event-type': m.eventType },
        })),
      });
      await this.options.beforeCommit?.([...budget.map((a) => a.id), ...credits.map((a) => creditAlertMessageId(a.id))]);
      const enqueued = await this.webhooks.enqueueDeliveries(messages, q);
      await this.alerts.markPublished(budget.map((a) => a.id), q);
      await this.creditAlerts.markPublished(credits.map((a) => a.id), q);
      return { result: { count: budget.length + credits.length, credit: credits.length, full: batchFull, deliveries: enqueued }, commit: true };
    });
    if (count > 0) this.log.info({ alerts: count, creditAlerts: credit, deliveries }, 'alerts published');
    if (deliveries > 0) this.options.onDeliveriesEnqueued?.();
    return { count, full };
  }
}
