import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { createDatabase, type Database } from './database';
import { PriceBookRepository } from './price-book.repository';
import { RepriceRepository } from './reprice.repository';
import { UsageEventsRepository } from './usage-events.repository';

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
  ],
  exports: [DATABASE, UsageEventsRepository, PriceBookRepository, RepriceRepository],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  async onApplicationShutdown(): Promise<void> {
    await this.db.close();
  }
}
