export * from './stripe-gateway';
export * from './retries';
export * from './sdk-stripe-gateway';
