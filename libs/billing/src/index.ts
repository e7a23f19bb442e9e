export * from './errors';
export * from './money';
export * from './canonical-json';
export * from './usage-shapes';
export * from './usage-event';
export * from './pricing';
export * from './overrides';
export * from './seed-prices';
