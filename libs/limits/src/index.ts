// Spend limits (docs/limits.md): budgets, the authorize check and its in-memory state, alerts.
export * from './alert-event';
export * from './webhook-signing';
export * from './pg-listener';
export * from './alerts-dispatcher';
export * from './webhook-deliverer';
