import { Module } from '@nestjs/common';
import { PriceBookRepository, RepriceRepository, UsageEventsRepository } from '@tokenmeter/db';
import { PriceBookCache } from './price-book.cache';
import { RepriceService } from './reprice.service';
import { UsageIngestor } from './usage-ingestor';

@Module({
  providers: [
    { provide: PriceBookCache, useFactory: (repo: PriceBookRepository) => new PriceBookCache(repo), inject: [PriceBookRepository] },
    {
      provide: UsageIngestor,
      useFactory: (events: UsageEventsRepository, prices: PriceBookCache) => new UsageIngestor(events, prices),
      inject: [UsageEventsRepository, PriceBookCache],
    },
    {
      provide: RepriceService,
      useFactory: (repo: RepriceRepository, prices: PriceBookCache) => new RepriceService(repo, prices),
      inject: [RepriceRepository, PriceBookCache],
    },
  ],
  exports: [UsageIngestor, RepriceService, PriceBookCache],
})
export class IngestModule {}
