import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { createDatabase, type Database } from './database';
import { PriceBookRepository } from './price-book.repository';
import { RepriceRepository } from './reprice.repository';
import { UsageEventsRepository } from './usage-events.repository';
import { AccountsRepository } from './accounts.repository';
import { ApiKeysRepository } from './api-keys.repository';
import { AuditLogRepository } from './audit-log.repository';
import { PriceOverridesRepository } from './price-overrides.repository';
import { Transactor } from './transactor';
import { WebSessionsRepository } from './web-sessions.repository';
import { DashboardLinksRepository } from './dashboard-links.repository';

export const DATABASE = Symbol('Database');

@Global()
@Module({
  providers: [
    {
      provide: DATABASE,
      useFactory: (config: TokenmeterConfig): Database => createDatabase(config.databaseUrl, config.databasePoolSize),
      inject: [CONFIG],
    },
    { provide: UsageEventsRepository, useFactory: (db: Database) => new UsageEventsRepository(db.pool), inject: [DATABASE] },
    { provide: PriceBookRepository, useFactory: (db: Database) => new PriceBookRepository(db.pool), inject: [DATABASE] },
    { provide: RepriceRepository, useFactory: (db: Database) => new RepriceRepository(db.pool), inject: [DATABASE] },
    { provide: Transactor, useFactory: (db: Database) => new Transactor(db.pool), inject: [DATABASE] },
    { provide: AccountsRepository, useFactory: (db: Database) => new AccountsRepository(db.pool), inject: [DATABASE] },
    { provide: ApiKeysRepository, useFactory: (db: Database) => new ApiKeysRepository(db.pool), inject: [DATABASE] },
    { provide: AuditLogRepository, useFactory: (db: Database) => new AuditLogRepository(db.pool), inject: [DATABASE] },
    { provide: PriceOverridesRepository, useFactory: (db: Database) => new PriceOverridesRepository(db.pool), inject: [DATABASE] },
    { provide: WebSessionsRepository, useFactory: (db: Database) => new WebSessionsRepository(db.pool), inject: [DATABASE] },
    { provide: DashboardLinksRepository, useFactory: (db: Database) => new DashboardLinksRepository(db.pool), inject: [DATABASE] },
  ],
  exports: [
    DATABASE,
    UsageEventsRepository,
    PriceBookRepository,
    RepriceRepository,
    Transactor,
    AccountsRepository,
    ApiKeysRepository,
    AuditLogRepository,
    PriceOverridesRepository,
    WebSessionsRepository,
    DashboardLinksRepository,
  ],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}
