import { Global, Module } from '@nestjs/common';
import { loadConfig, type TokenmeterConfig } from './config';
import { createLogger, type Logger } from './logger';

export const CONFIG = Symbol('TokenmeterConfig');
export const LOGGER = Symbol('Logger');

/** Configuration is validated once at boot; a bad variable stops the process before anything starts. */
@Global()
@Module({
  providers: [
    { provide: CONFIG, useFactory: (): TokenmeterConfig => loadConfig() },
    {
      provide: LOGGER,
      useFactory: (config: TokenmeterConfig): Logger => createLogger('tokenmeter', config.logLevel),
      inject: [CONFIG],
    },
  ],
  exports: [CONFIG, LOGGER],
})
export class ConfigModule {}
