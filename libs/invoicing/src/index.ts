export * from './errors';
export * from './completeness';
export * from './usage-rows';
export * from './close.service';
export * from './sync.service';
export * from './webhook.service';
export * from './reconciliation.service';
