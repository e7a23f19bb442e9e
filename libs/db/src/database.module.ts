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

/**
 * The read side's database: a second pool on DATABASE_READ_URL (a streaming replica) when set,
 * otherwise DATABASE itself. Only READ_REPOSITORIES and READ_INGEST_PROGRESS use it: dashboards
 * and audits, which may lag the primary by the replica's replay delay. Writes, transactions and
 * every read that must see its own writes (invoicing, limits, the price book) stay on DATABASE.
 */
export const READ_DATABASE = Symbol('ReadDatabase');

/**
 * ingest_progress as READ_DATABASE sees it, for complete_up_to: a watermark computed from the
 * primary would claim events a lagging replica has not replayed yet. The invoice close keeps
 * reading IngestProgressRepository (the primary), the data it closes from.
 */
export const READ_INGEST_PROGRESS = Symbol('ReadIngestProgress');

/** The read-only repositories of the dashboards and audits, over READ_DATABASE. */
const READ_REPOSITORIES = [UsageReadRepository, EventReadRepository] as const;

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
    {
      provide: READ_DATABASE,
      useFactory: (config: TokenmeterConfig, db: Database): Database =>
        config.databaseReadUrl === null ? db : createDatabase(config.databaseReadUrl, config.databasePoolSize, 'tokenmeter-read'),
      inject: [CONFIG, DATABASE],
    },
    ...REPOSITORIES.map((repository) => ({ provide: repository, useFactory: (db: Database) => new repository(db.pool), inject: [DATABASE] })),
    ...READ_REPOSITORIES.map((repository) => ({ provide: repository, useFactory: (db: Database) => new repository(db.pool), inject: [READ_DATABASE] })),
    { provide: READ_INGEST_PROGRESS, useFactory: (db: Database) => new IngestProgressRepository(db.pool), inject: [READ_DATABASE] },
    { provide: Transactor, useFactory: (db: Database) => new Transactor(db.pool), inject: [DATABASE] },
    {
      provide: InvoicesRepository,
      useFactory: (db: Database, claims: UsageEventClaimsRepository) => new InvoicesRepository(db.pool, claims),
      inject: [DATABASE, UsageEventClaimsRepository],
    },
  ],
  exports: [DATABASE, READ_DATABASE, Transactor, ...REPOSITORIES, ...READ_REPOSITORIES, READ_INGEST_PROGRESS, InvoicesRepository],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(DATABASE) private readonly db: Database,
    @Inject(READ_DATABASE) private readonly readDb: Database,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.db.close(), this.readDb === this.db ? undefined : this.readDb.close()]);
  }
}
