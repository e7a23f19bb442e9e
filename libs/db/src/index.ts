export * from './database';
export * from './errors';
export * from './usage-events.repository';
export * from './price-book.repository';
export * from './reprice.repository';
export * from './database.module';
