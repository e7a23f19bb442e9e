import type { Logger, TokenmeterConfig } from '@tokenmeter/config';
import {
  AccountsRepository,
  AuditLogRepository,
  CreditGrantsRepository,
  CreditLedgerRepository,
  CreditUsageRepository,
  IngestProgressRepository,
  InvoicesRepository,
  ReconciliationRepository,
  StripeWebhookEventsRepository,
  Transactor,
  UsageEventClaimsRepository,
  type Database,
} from '@tokenmeter/db';
import type { StripeGateway } from '@tokenmeter/stripe';
import { InvoiceCloseService } from './close.service';
import { CreditTopUpService } from './credit-top-ups.service';
import { InvoiceCredits } from './invoice-credits';
import { kafkaLagProbe, type KafkaAdminFactory } from './kafka-lag-probe';
import { ReconciliationService } from './reconciliation.service';
import { InvoiceSyncService } from './sync.service';
import { StripeWebhookService } from './webhook.service';

/** The shared parts invoicing is built from; each app builds them once, its own way. */
export interface InvoicingDeps {
  db: Database;
  config: Pick<TokenmeterConfig, 'invoicing' | 'kafka' | 'stripe'>;
  stripe: StripeGateway;
  /**
   * The Kafka client, for the completeness rule's broker high-watermark probe (one admin
   * connection, opened on first use). null only where there is no broker (benchmarks, tests that
   * set ingest_progress by hand): an idle partition then holds the close back until force.
   */
  kafka: KafkaAdminFactory | null;
  log: Logger;
  /** Tests only: the close's "now". */
  clock?: () => Date;
}

export interface Invoicing {
  closer: InvoiceCloseService;
  sync: InvoiceSyncService;
  reconciliation: ReconciliationService;
  webhooks: StripeWebhookService;
  topUps: CreditTopUpService;
  /** Disconnects the broker probe (the database belongs to the caller). */
  close(): Promise<void>;
}

/**
 * THE composition root of invoicing: the API (InvoicesModule), the invoicer (wiring.ts) and the
 * tests (test/helpers/invoicing.ts) all build the services here, so they apply the same
 * completeness rule (grace, usage topic, broker high watermarks) and push to Stripe with the same
 * concurrency (STRIPE_MAX_IN_FLIGHT invoices at once; the gateway caps requests the same way).
 */
export function createInvoicing(deps: InvoicingDeps): Invoicing {
  const { db, config, stripe, log } = deps;
  const transactor = new Transactor(db.pool);
  const claims = new UsageEventClaimsRepository(db.pool);
  const invoices = new InvoicesRepository(db.pool, claims);
  const audit = new AuditLogRepository(db.pool);
  const lagProbe = deps.kafka ? kafkaLagProbe(deps.kafka, config.kafka.topic, log) : undefined;
  const grants = new CreditGrantsRepository(db.pool);
  const ledger = new CreditLedgerRepository(db.pool);
  const accounts = new AccountsRepository(db.pool);
  const credits = new InvoiceCredits(grants, ledger, new CreditUsageRepository(db.pool), claims);
  const topUps = new CreditTopUpService(grants, ledger, accounts, audit, transactor, stripe, deps.clock);
  const sync = new InvoiceSyncService(invoices, accounts, audit, transactor, stripe, credits, {
    invoiceConcurrency: config.stripe.maxInFlight,
    log,
  });
  const closer = new InvoiceCloseService(invoices, claims, new IngestProgressRepository(db.pool), audit, sync, credits, {
    graceMinutes: config.invoicing.closeGraceMinutes,
    topic: config.kafka.topic,
    lagProbe,
    clock: deps.clock,
  });
  return {
    closer,
    sync,
    reconciliation: new ReconciliationService(new ReconciliationRepository(db.pool), stripe),
    webhooks: new StripeWebhookService(invoices, new StripeWebhookEventsRepository(db.pool), transactor, stripe, credits, topUps),
    topUps,
    close: async () => {
      await lagProbe?.disconnect();
    },
  };
}
