import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { DATABASE, type Database } from '@tokenmeter/db';
import {
  createInvoicing,
  CreditTopUpService,
  InvoiceCloseService,
  InvoiceSyncService,
  ReconciliationService,
  StripeWebhookService,
  type Invoicing,
} from '@tokenmeter/invoicing';
import { SdkStripeGateway } from '@tokenmeter/stripe';
import { StripeWebhookController } from '../webhooks/stripe-webhook.controller';
import { AdminInvoicesController } from './admin-invoices.controller';
import { CreditTopUpsController } from './credit-top-ups.controller';
import { InvoicesController } from './invoices.controller';
import { InvoicesService } from './invoices.service';

export const INVOICING = Symbol('Invoicing');

/** Invoices (account and admin routes) and Stripe webhooks, over libs/invoicing's one composition root. */
@Module({
  controllers: [InvoicesController, AdminInvoicesController, StripeWebhookController, CreditTopUpsController],
  providers: [
    {
      provide: INVOICING,
      useFactory: (db: Database, config: TokenmeterConfig, log: Logger): Invoicing =>
        createInvoicing({
          db,
          config,
          stripe: new SdkStripeGateway({ ...config.stripe }),
          // Its own client: the close completeness rule reads high watermarks through one admin connection.
          kafka: new Kafka({ clientId: `${config.kafka.clientId}-api`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } }),
          log,
        }),
      inject: [DATABASE, CONFIG, LOGGER],
    },
    { provide: InvoiceCloseService, useFactory: (i: Invoicing) => i.closer, inject: [INVOICING] },
    { provide: InvoiceSyncService, useFactory: (i: Invoicing) => i.sync, inject: [INVOICING] },
    { provide: ReconciliationService, useFactory: (i: Invoicing) => i.reconciliation, inject: [INVOICING] },
    { provide: StripeWebhookService, useFactory: (i: Invoicing) => i.webhooks, inject: [INVOICING] },
    { provide: CreditTopUpService, useFactory: (i: Invoicing) => i.topUps, inject: [INVOICING] },
    InvoicesService,
  ],
  // The web dashboard's invoice pages read and act through the same services.
  exports: [InvoicesService, InvoiceCloseService, InvoiceSyncService, ReconciliationService],
})
export class InvoicesModule implements OnApplicationShutdown {
  constructor(@Inject(INVOICING) private readonly invoicing: Invoicing) {}

  async onApplicationShutdown(): Promise<void> {
    await this.invoicing.close();
  }
}
