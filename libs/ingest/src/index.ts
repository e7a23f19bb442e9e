export * from './price-book.cache';
export * from './usage-ingestor';
export * from './reprice.service';
export * from './ingest.module';
export * from './event-retention.service';
export * from './usage-topic';
