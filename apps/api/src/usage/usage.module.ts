import { Module } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { IngestModule } from '@tokenmeter/ingest';
import { PricesController } from '../prices/prices.controller';
import { FreshnessService } from './freshness';
import { UsageController } from './usage.controller';
import { UsageService } from './usage.service';

/** Account read routes: usage summary, time series, receipts, and the price list. */
@Module({
  imports: [IngestModule],
  controllers: [UsageController, PricesController],
  providers: [
    {
      // Its own client: complete_up_to reads topic offsets through one long-lived admin connection.
      provide: Kafka,
      useFactory: (config: TokenmeterConfig) =>
        new Kafka({ clientId: `${config.kafka.clientId}-api`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } }),
      inject: [CONFIG],
    },
    FreshnessService,
    UsageService,
  ],
  exports: [UsageService, FreshnessService],
})
export class UsageModule {}
