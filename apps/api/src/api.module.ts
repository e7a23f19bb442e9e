import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { Kafka, logLevel } from 'kafkajs';
import { CONFIG, ConfigModule, type TokenmeterConfig } from '@tokenmeter/config';
import { DatabaseModule } from '@tokenmeter/db';
import { IngestModule } from '@tokenmeter/ingest';
import { AdminUsageModule } from './admin-usage/admin-usage.module';
import { AdminModule } from './admin/admin.module';
import { AuthModule } from './auth/auth.module';
import { ApiErrorFilter } from './common/api-error';
import { HealthController } from './health/health.controller';
import { IngestController } from './ingest/ingest.controller';
import { IngestTokenGuard } from './ingest/ingest-token.guard';
import { InvoicesModule } from './invoices/invoices.module';
import { AuthorizeModule } from './limits/authorize.module';
import { BudgetsModule } from './limits/budgets.module';
import { ObservabilityModule } from './observability/observability.module';
import { UsageModule } from './usage/usage.module';
import { WebModule } from './web/web.module';
import { WebhooksAdminModule } from './webhooks-admin/webhooks-admin.module';

@Module({
  imports: [
    ConfigModule,
    DatabaseModule,
    IngestModule,
    TerminusModule.forRoot({ logger: false }),
    AuthModule,
    AdminModule,
    BudgetsModule,
    AuthorizeModule,
    ObservabilityModule,
    UsageModule,
    AdminUsageModule,
    InvoicesModule,
    WebModule,
    WebhooksAdminModule,
  ],
  controllers: [IngestController, HealthController],
  providers: [
    IngestTokenGuard,
    { provide: APP_FILTER, useClass: ApiErrorFilter },
    {
      provide: Kafka,
      useFactory: (config: TokenmeterConfig) =>
        new Kafka({ clientId: `${config.kafka.clientId}-api`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } }),
      inject: [CONFIG],
    },
  ],
})
export class ApiModule {}
