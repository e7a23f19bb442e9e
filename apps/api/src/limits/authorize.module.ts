import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { AccountsRepository, SpendStateRepository } from '@tokenmeter/db';
import { IngestModule, PriceBookCache } from '@tokenmeter/ingest';
import { CreditState, CreditsService, SpendAuthorizer, SpendStateCache } from '@tokenmeter/limits';
import { AuthModule } from '../auth/auth.module';
import { CreditsModule } from '../credits/credits.module';
import { IngestTokenGuard } from '../ingest/ingest-token.guard';
import { SpendAuthorizeController } from './spend-authorize.controller';

/**
 * POST /v1/spend/authorize and the state it answers from: the spend state (its own listen
 * connection) and the holds, started with the app and stopped with it (docs/limits.md).
 */
@Module({
  imports: [AuthModule, IngestModule, CreditsModule],
  controllers: [SpendAuthorizeController],
  providers: [
    IngestTokenGuard,
    {
      provide: SpendStateCache,
      useFactory: (config: TokenmeterConfig, repository: SpendStateRepository, log: Logger) =>
        new SpendStateCache(repository, { databaseUrl: config.databaseUrl, onError: (message, err) => log.warn({ err }, message) }),
      inject: [CONFIG, SpendStateRepository, LOGGER],
    },
    {
      provide: CreditState,
      useFactory: (config: TokenmeterConfig, accounts: AccountsRepository, credits: CreditsService, log: Logger) =>
        new CreditState(
          {
            listPrepaidOnlyAccountIds: () => accounts.listPrepaidOnlyAccountIds(),
            isPrepaidOnly: async (id) => (await accounts.getAccount(id))?.prepaidOnly ?? false,
            poolsOf: (id, now) => credits.poolsForAuthorize(id, now),
          },
          { databaseUrl: config.databaseUrl, onError: (message, err) => log.warn({ err }, message) },
        ),
      inject: [CONFIG, AccountsRepository, CreditsService, LOGGER],
    },
    {
      provide: SpendAuthorizer,
      useFactory: (
        config: TokenmeterConfig,
        cache: SpendStateCache,
        repository: SpendStateRepository,
        prices: PriceBookCache,
        log: Logger,
        credits: CreditState,
      ) =>
        new SpendAuthorizer(cache, repository, () => prices.current(), {
          holdTtlMs: config.authorize.holdTtlSeconds * 1000,
          holdGraceMs: config.authorize.holdGraceSeconds * 1000,
          fallbackMaxOutputTokens: config.authorize.fallbackMaxOutputTokens,
          clockSkewMs: config.authorize.clockSkewSeconds * 1000,
          maxRetryAfterSeconds: config.authorize.maxRetryAfterSeconds,
          topic: config.kafka.topic,
          topicPartitions: config.kafka.topicPartitions,
          onError: (message, err) => log.warn({ err }, message),
        }, credits),
      inject: [CONFIG, SpendStateCache, SpendStateRepository, PriceBookCache, LOGGER, CreditState],
    },
  ],
  exports: [SpendStateCache, SpendAuthorizer, CreditState],
})
export class AuthorizeModule implements OnModuleInit, OnModuleDestroy {
  constructor(
    @Inject(SpendStateCache) private readonly cache: SpendStateCache,
    @Inject(SpendAuthorizer) private readonly authorizer: SpendAuthorizer,
    @Inject(CreditState) private readonly credits: CreditState,
  ) {}

  /** Before the server listens: the first snapshot and price book are loaded (or being retried, if the database is down). */
  async onModuleInit(): Promise<void> {
    await this.authorizer.start();
    await this.cache.start();
    await this.credits.start();
  }

  /** The listen connection closes before the pool does (DatabaseModule closes it at shutdown, after this). */
  async onModuleDestroy(): Promise<void> {
    await this.authorizer.stop();
    await this.cache.stop();
    await this.credits.stop();
  }
}
