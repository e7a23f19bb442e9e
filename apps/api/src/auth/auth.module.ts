import { Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { ApiKeysRepository } from '@tokenmeter/db';
import { ApiKeyAuthenticator, ApiKeysService } from '@tokenmeter/auth';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeysController } from './api-keys.controller';
import { AuthFailureThrottle } from './auth-failure-throttle';

/** Client addresses tracked by the failed-authentication throttle (~100 bytes each). */
const MAX_THROTTLED_ADDRESSES = 100_000;

/** API keys, the global auth guard, the failed-authentication throttle, and the TOKENMETER_ADMIN_KEY bootstrap. */
@Module({
  controllers: [ApiKeysController],
  providers: [
    {
      provide: ApiKeyAuthenticator,
      useFactory: (keys: ApiKeysRepository, log: Logger) =>
        new ApiKeyAuthenticator(keys, {}, (err) => log.warn({ err }, 'could not record API key use')),
      inject: [ApiKeysRepository, LOGGER],
    },
    {
      provide: AuthFailureThrottle,
      useFactory: (config: TokenmeterConfig, log: Logger) =>
        new AuthFailureThrottle({
          limit: config.api.authFailures.limit,
          windowMs: config.api.authFailures.windowSeconds * 1000,
          maxAddresses: MAX_THROTTLED_ADDRESSES,
          onBlock: (client, failures) =>
            log.warn({ client, failures, seconds: config.api.authFailures.windowSeconds }, 'too many failed authentications; address refused'),
        }),
      inject: [CONFIG, LOGGER],
    },
    ApiKeysService,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
  exports: [ApiKeysService, ApiKeyAuthenticator, AuthFailureThrottle],
})
export class AuthModule implements OnApplicationBootstrap {
  constructor(
    @Inject(CONFIG) private readonly config: TokenmeterConfig,
    @Inject(LOGGER) private readonly log: Logger,
    private readonly keys: ApiKeysService,
  ) {}

  /** Before the server listens: a fresh install (and the tests) can use TOKENMETER_ADMIN_KEY at once. */
  async onApplicationBootstrap(): Promise<void> {
    const secret = this.config.api.adminKey;
    if (!secret) return;
    const { status, record } = await this.keys.ensureBootstrapAdminKey(secret);
    if (status === 'revoked') {
      this.log.warn({ keyId: record.id, prefix: record.prefix }, 'TOKENMETER_ADMIN_KEY names a revoked key; it stays revoked (set a new one)');
    } else if (status === 'created') {
      this.log.info({ keyId: record.id, prefix: record.prefix }, 'admin key from TOKENMETER_ADMIN_KEY created');
    }
  }
}
