// Spend limits (docs/limits.md): budgets, the authorize check and its in-memory state, alerts.
export * from './spend-state.cache';
export * from './holds';
export * from './spend-authorizer';
export * from './spend-state.publisher';
export * from './budgets.service';
export * from './alert-event';
export * from './webhook-signing';
export * from './pg-listener';
export * from './alerts-dispatcher';
export * from './webhook-deliverer';
export * from './credits.service';
export * from './credit-state';
export * from './credit-alerts-watcher';
