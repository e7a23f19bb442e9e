export * from './price-book-json';
export * from './models.service';
