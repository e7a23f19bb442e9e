import { PriceBookRepository, UsageEventsRepository, type Database } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor, type IngestMessage } from '@tokenmeter/ingest';

/** The ingestor on a test database's pool, wired as the apps wire it; `clock` is the ingest time (default: now). */
export function ingestorOn(db: Database, clock?: () => Date): UsageIngestor {
  return new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)), clock);
}

/** Events as the ingestor's messages, without a Kafka key (the HTTP path's shape). */
export function asMessages(events: unknown[]): IngestMessage[] {
  return events.map((value) => ({ value, key: null }));
}
