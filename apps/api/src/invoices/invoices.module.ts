import { Module } from '@nestjs/common';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { DATABASE, InvoicesRepository, type Database } from '@tokenmeter/db';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService, StripeWebhookService } from '@tokenmeter/invoicing';
import { SdkStripeGateway } from '@tokenmeter/stripe';
import { StripeWebhookController } from '../webhooks/stripe-webhook.controller';
import { AdminInvoicesController } from './admin-invoices.controller';
import { InvoicesController } from './invoices.controller';

export const STRIPE_GATEWAY = Symbol('StripeGateway');

/** Invoices (account and admin routes) and Stripe webhooks, over libs/invoicing. */
@Module({
  controllers: [InvoicesController, AdminInvoicesController, StripeWebhookController],
  providers: [
    { provide: InvoicesRepository, useFactory: (db: Database) => new InvoicesRepository(db.pool), inject: [DATABASE] },
    {
      provide: STRIPE_GATEWAY,
      useFactory: (config: TokenmeterConfig) => new SdkStripeGateway({ ...config.stripe }),
      inject: [CONFIG],
    },
    {
      provide: InvoiceSyncService,
      useFactory: (repo: InvoicesRepository, stripe: SdkStripeGateway) => new InvoiceSyncService(repo, stripe),
      inject: [InvoicesRepository, STRIPE_GATEWAY],
    },
    {
      provide: InvoiceCloseService,
      useFactory: (repo: InvoicesRepository, sync: InvoiceSyncService, config: TokenmeterConfig) =>
        new InvoiceCloseService(repo, sync, { graceMinutes: config.invoicing.closeGraceMinutes, topic: config.kafka.topic }),
      inject: [InvoicesRepository, InvoiceSyncService, CONFIG],
    },
    {
      provide: ReconciliationService,
      useFactory: (repo: InvoicesRepository, stripe: SdkStripeGateway) => new ReconciliationService(repo, stripe),
      inject: [InvoicesRepository, STRIPE_GATEWAY],
    },
    {
      provide: StripeWebhookService,
      useFactory: (repo: InvoicesRepository, stripe: SdkStripeGateway) => new StripeWebhookService(repo, stripe),
      inject: [InvoicesRepository, STRIPE_GATEWAY],
    },
  ],
})
export class InvoicesModule {}
