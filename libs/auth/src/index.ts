export * from './roles';
export * from './api-key-secret';
export * from './api-key-view';
export * from './api-key-authenticator';
export * from './api-keys.service';
