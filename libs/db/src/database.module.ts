import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { createDatabase, type Database } from './database';
import { PriceBookRepository } from './price-book.repository';
import { RepriceRepository } from './reprice.repository';
import { UsageEventsRepository } from './usage-events.repository';
import { UsageEventPartitionsRepository } from './usage-event-partitions.repository';
import { AccountsRepository } from './accounts.repository';
import { ApiKeysRepository } from './api-keys.repository';
import { AuditLogRepository } from './audit-log.repository';
import { PriceOverridesRepository } from './price-overrides.repository';
import { UsageReadRepository } from './usage-read.repository';
import { EventReadRepository } from './event-read.repository';
import { IngestProgressRepository } from './ingest-progress.repository';
import { InvoicesRepository } from './invoices.repository';
import { UsageEventClaimsRepository } from './usage-event-claims.repository';
import { StripeWebhookEventsRepository } from './stripe-webhook-events.repository';
import { ReconciliationRepository } from './reconciliation.repository';
import { Transactor } from './transactor';
import { WebSessionsRepository } from './web-sessions.repository';
import { DashboardLinksRepository } from './dashboard-links.repository';
import { SpendStateRepository } from './spend-state.repository';
import { BudgetsRepository } from './budgets.repository';
import { BudgetSpendRepository } from './budget-spend.repository';
import { BudgetAlertsRepository } from './budget-alerts.repository';
import { WebhooksRepository } from './webhooks.repository';
import { CreditGrantsRepository } from './credit-grants.repository';
import { CreditLedgerRepository } from './credit-ledger.repository';
import { CreditUsageRepository } from './credit-usage.repository';
import { CreditAlertsRepository } from './credit-alerts.repository';

export const DATABASE = Symbol('Database');

/** Each repository over the process's one pool; app modules inject them, never build their own. */
const REPOSITORIES = [
  UsageEventsRepository,
  UsageEventPartitionsRepository,
  PriceBookRepository,
  RepriceRepository,
  AccountsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  PriceOverridesRepository,
  UsageReadRepository,
  EventReadRepository,
  IngestProgressRepository,
  UsageEventClaimsRepository,
  StripeWebhookEventsRepository,
  ReconciliationRepository,
  WebSessionsRepository,
  DashboardLinksRepository,
  SpendStateRepository,
  BudgetsRepository,
  BudgetSpendRepository,
  BudgetAlertsRepository,
  WebhooksRepository,
  CreditGrantsRepository,
  CreditLedgerRepository,
  CreditUsageRepository,
  CreditAlertsRepository,
] as const;

@Global()
@Module({
  providers: [
    {
      provide: DATABASE,
      useFactory: (config: TokenmeterConfig): Database => createDatabase(config.databaseUrl, config.databasePoolSize),
      inject: [CONFIG],
    },
    ...REPOSITORIES.map((repository) => ({ provide: repository, useFactory: (db: Database) => new repository(db.pool), inject: [DATABASE] })),
    { provide: Transactor, useFactory: (db: Database) => new Transactor(db.pool), inject: [DATABASE] },
    {
      provide: InvoicesRepository,
      useFactory: (db: Database, claims: UsageEventClaimsRepository) => new InvoicesRepository(db.pool, claims),
      inject: [DATABASE, UsageEventClaimsRepository],
    },
  ],
  exports: [DATABASE, Transactor, ...REPOSITORIES, InvoicesRepository],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}
