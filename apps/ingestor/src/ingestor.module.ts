import { Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { Kafka, logLevel } from 'kafkajs';
import { AggregatorRegistry } from 'prom-client';
import { CONFIG, ConfigModule, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { DatabaseModule, UsageEventsRepository } from '@tokenmeter/db';
import { ensureUsageTopics, IngestModule, UsageIngestor } from '@tokenmeter/ingest';
import { IngestorMetrics, startMetricsServer } from './ingestor-metrics';
import { KAFKA_RETRY, UsageConsumer } from './usage-consumer';

class ConsumerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private metricsServer: Server | undefined;

  constructor(
    private readonly consumer: UsageConsumer,
    private readonly kafka: Kafka,
    private readonly config: TokenmeterConfig,
    private readonly metrics: IngestorMetrics,
    private readonly log: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (cluster.isWorker) {
      // One of several processes: the supervisor serves the sum of everyone's metrics. Only
      // constructing an AggregatorRegistry makes prom-client answer the supervisor's requests.
      AggregatorRegistry.setRegistries(this.metrics.registry);
      new AggregatorRegistry();
    } else {
      this.metricsServer = await startMetricsServer(this.metrics.registry, this.config.ingest.metricsPort, this.log);
    }
    await ensureUsageTopics(this.kafka, this.config.kafka, this.log);
    await this.consumer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
    await new Promise<void>((resolve) => (this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve()));
  }
}

@Module({
  imports: [ConfigModule, DatabaseModule, IngestModule],
  providers: [
    {
      provide: Kafka,
      useFactory: (config: TokenmeterConfig) =>
        new Kafka({ clientId: `${config.kafka.clientId}-ingestor`, brokers: config.kafka.brokers, logLevel: logLevel.WARN, retry: KAFKA_RETRY }),
      inject: [CONFIG],
    },
    {
      provide: IngestorMetrics,
      useFactory: (events: UsageEventsRepository) => new IngestorMetrics(() => events.writePaths),
      inject: [UsageEventsRepository],
    },
    {
      provide: UsageConsumer,
      useFactory: (kafka: Kafka, ingestor: UsageIngestor, config: TokenmeterConfig, log: Logger, metrics: IngestorMetrics) =>
        new UsageConsumer(
          kafka,
          ingestor,
          {
            topic: config.kafka.topic,
            dlqTopic: config.kafka.dlqTopic,
            groupId: config.kafka.groupId,
            chunkSize: config.ingest.chunkSize,
            partitionsConsumedConcurrently: config.ingest.partitionConcurrency,
            sessionTimeoutMs: config.ingest.sessionTimeoutMs,
            onChunkCommitted: (chunk) => metrics.recordChunk(chunk),
            onAssignment: (assignment) => metrics.retainPartitions(assignment),
          },
          log,
        ),
      inject: [Kafka, UsageIngestor, CONFIG, LOGGER, IngestorMetrics],
    },
    {
      provide: ConsumerLifecycle,
      useFactory: (consumer: UsageConsumer, kafka: Kafka, config: TokenmeterConfig, metrics: IngestorMetrics, log: Logger) =>
        new ConsumerLifecycle(consumer, kafka, config, metrics, log),
      inject: [UsageConsumer, Kafka, CONFIG, IngestorMetrics, LOGGER],
    },
  ],
})
export class IngestorModule {}
