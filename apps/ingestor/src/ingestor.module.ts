import { Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { CONFIG, ConfigModule, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { DatabaseModule } from '@tokenmeter/db';
import { IngestModule, UsageIngestor } from '@tokenmeter/ingest';
import { ensureTopics } from './topics';
import { UsageConsumer } from './usage-consumer';

class ConsumerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly consumer: UsageConsumer,
    private readonly kafka: Kafka,
    private readonly config: TokenmeterConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await ensureTopics(this.kafka, this.config.kafka, this.config.kafka.topicPartitions);
    await this.consumer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
  }
}

@Module({
  imports: [ConfigModule, DatabaseModule, IngestModule],
  providers: [
    {
      provide: Kafka,
      useFactory: (config: TokenmeterConfig) =>
        new Kafka({ clientId: `${config.kafka.clientId}-ingestor`, brokers: config.kafka.brokers, logLevel: logLevel.WARN }),
      inject: [CONFIG],
    },
    {
      provide: UsageConsumer,
      useFactory: (kafka: Kafka, ingestor: UsageIngestor, config: TokenmeterConfig, log: Logger) =>
        new UsageConsumer(
          kafka,
          ingestor,
          {
            topic: config.kafka.topic,
            dlqTopic: config.kafka.dlqTopic,
            groupId: config.kafka.groupId,
            chunkSize: config.ingest.chunkSize,
            partitionsConsumedConcurrently: config.ingest.partitionConcurrency,
          },
          log,
        ),
      inject: [Kafka, UsageIngestor, CONFIG, LOGGER],
    },
    {
      provide: ConsumerLifecycle,
      useFactory: (consumer: UsageConsumer, kafka: Kafka, config: TokenmeterConfig) => new ConsumerLifecycle(consumer, kafka, config),
      inject: [UsageConsumer, Kafka, CONFIG],
    },
  ],
})
export class IngestorModule {}
