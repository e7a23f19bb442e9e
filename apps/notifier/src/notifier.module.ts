import { Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { CONFIG, ConfigModule, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { parseCreditLowThresholds } from '@tokenmeter/billing';
import { BudgetAlertsRepository, CreditAlertsRepository, DATABASE, DatabaseModule, type Database, SpendStateRepository, WebhooksRepository } from '@tokenmeter/db';
import { createTopicsAndWait } from '@tokenmeter/ingest';
import { AlertsDispatcher, CreditAlertsWatcher, CreditsService, SpendStateCache, SpendStatePublisher, WebhookDeliverer } from '@tokenmeter/limits';

/** Partitions of the alerts topic when the notifier creates it (records are keyed by account). */
const ALERTS_TOPIC_PARTITIONS = 3;

/**
 * Starts the deliverer, then the dispatcher, then the credit alerts watcher, then the spend-state publisher (the compacted topic
 * tokenmeter.spend.state.v1, fed by its own in-memory spend state); stops them the other way round,
 * each finishing what it has in flight.
 */
class NotifierLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly spendState: SpendStateCache;
  private readonly spendStatePublisher: SpendStatePublisher;

  constructor(
    private readonly kafka: Kafka,
    private readonly producer: Producer,
    private readonly dispatcher: AlertsDispatcher,
    private readonly deliverer: WebhookDeliverer,
    private readonly creditAlerts: CreditAlertsWatcher,
    private readonly config: TokenmeterConfig,
    private readonly log: Logger,
    spendStateRepository: SpendStateRepository,
  ) {
    const onError = (message: string, err: unknown) => this.log.warn({ err }, message);
    this.spendState = new SpendStateCache(spendStateRepository, { databaseUrl: config.databaseUrl, onError });
    this.spendStatePublisher = new SpendStatePublisher(this.spendState, producer, { onError });
  }

  async onApplicationBootstrap(): Promise<void> {
    await ensureTopic(this.kafka, this.config.alerts.topic);
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await SpendStatePublisher.ensureTopic(admin);
    } finally {
      await admin.disconnect();
    }
    await this.producer.connect();
    this.deliverer.start();
    await this.dispatcher.start();
    await this.creditAlerts.start();
    await this.spendState.start();
    this.spendStatePublisher.start();
    this.log.info(
      { topic: this.config.alerts.topic, concurrency: this.config.webhooks.concurrency, retryScheduleMs: this.config.webhooks.retryScheduleMs },
      'notifier running',
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.spendStatePublisher.stop();
    await this.spendState.stop();
    await this.creditAlerts.stop();
    await this.dispatcher.stop();
    await this.deliverer.stop();
    await this.producer.disconnect();
  }
}

async function ensureTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      await createTopicsAndWait(admin, [{ topic, numPartitions: ALERTS_TOPIC_PARTITIONS, replicationFactor: 1 }]);
    }
  } finally {
    await admin.disconnect();
  }
}

@Module({
  imports: [ConfigModule, DatabaseModule],
  providers: [
    {
      provide: Kafka,
      useFactory: (config: TokenmeterConfig) =>
        new Kafka({
          clientId: `${config.kafka.clientId}-notifier`,
          brokers: config.kafka.brokers,
          logLevel: logLevel.WARN,
          retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 8 },
        }),
      inject: [CONFIG],
    },
    {
      provide: 'ALERTS_PRODUCER',
      // Idempotent: a retry inside one send cannot duplicate a record (a re-send after a crash still can).
      useFactory: (kafka: Kafka) => kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }),
      inject: [Kafka],
    },
    {
      provide: WebhookDeliverer,
      useFactory: (webhooks: WebhooksRepository, config: TokenmeterConfig, log: Logger) => new WebhookDeliverer(webhooks, config.webhooks, log),
      inject: [WebhooksRepository, CONFIG, LOGGER],
    },
    {
      provide: AlertsDispatcher,
      useFactory: (
        db: Database,
        alerts: BudgetAlertsRepository,
        creditAlerts: CreditAlertsRepository,
        webhooks: WebhooksRepository,
        producer: Producer,
        deliverer: WebhookDeliverer,
        config: TokenmeterConfig,
        log: Logger,
      ) =>
        new AlertsDispatcher(
          db.pool,
          alerts,
          creditAlerts,
          webhooks,
          producer,
          {
            databaseUrl: config.databaseUrl,
            topic: config.alerts.topic,
            batchSize: config.alerts.batchSize,
            pollIntervalMs: config.alerts.pollIntervalMs,
            onDeliveriesEnqueued: () => deliverer.wake(),
          },
          log,
        ),
      inject: [DATABASE, BudgetAlertsRepository, CreditAlertsRepository, WebhooksRepository, 'ALERTS_PRODUCER', WebhookDeliverer, CONFIG, LOGGER],
    },
    CreditsService,
    {
      provide: CreditAlertsWatcher,
      useFactory: (credits: CreditsService, alerts: CreditAlertsRepository, config: TokenmeterConfig, log: Logger) =>
        new CreditAlertsWatcher(
          credits,
          alerts,
          { databaseUrl: config.databaseUrl, thresholdsPct: parseCreditLowThresholds(config.alerts.creditsLowThresholds) },
          log,
        ),
      inject: [CreditsService, CreditAlertsRepository, CONFIG, LOGGER],
    },
    {
      provide: NotifierLifecycle,
      useFactory: (
        kafka: Kafka,
        producer: Producer,
        dispatcher: AlertsDispatcher,
        deliverer: WebhookDeliverer,
        creditAlerts: CreditAlertsWatcher,
        config: TokenmeterConfig,
        log: Logger,
        spendState: SpendStateRepository,
      ) => new NotifierLifecycle(kafka, producer, dispatcher, deliverer, creditAlerts, config, log, spendState),
      inject: [Kafka, 'ALERTS_PRODUCER', AlertsDispatcher, WebhookDeliverer, CreditAlertsWatcher, CONFIG, LOGGER, SpendStateRepository],
    },
  ],
})
export class NotifierModule {}
