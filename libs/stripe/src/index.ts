export * from './stripe-gateway';
export * from './limits';
export * from './sdk-stripe-gateway';
