import { Inject, Module, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { AccountsRepository, SpendStateRepository } from '@tokenmeter/db';
import { Kafka, logLevel } from 'kafkajs';
import { IngestModule, PriceBookCache, UsageTopicPartitions } from '@tokenmeter/ingest';
import { CreditState, CreditsService, SpendAuthorizer, SpendStateCache } from '@tokenmeter/limits';
import { AuthFailureThrottle } from '../auth/auth-failure-throttle';
import { AuthModule } from '../auth/auth.module';
import { CreditsModule } from '../credits/credits.module';
import { IngestTokenGuard } from '../ingest/ingest-token.guard';
import { HttpMetrics } from '../observability/http-metrics';
import { ObservabilityModule } from '../observability/observability.module';
import { AuthorizeListener } from './authorize-listener';
import { SpendAuthorizeController } from './spend-authorize.controller';

/**
 * POST /v1/spend/authorize and the state it answers from: the spend state (its own listen
 * connection) and the holds, started with the app and stopped with it (docs/limits.md). The route
 * is served twice, with the same answers: by the Nest controller on the API's port, and by the
 * lean listener on AUTHORIZE_PORT (AuthorizeListener), the one for gateways at high rates.
 */
@Module({
  imports: [AuthModule, IngestModule, CreditsModule, ObservabilityModule],
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
      // The watermark waits for every partition of the usage topic: the count is the broker's, the setting only until it answers.
      provide: UsageTopicPartitions,
      useFactory: (config: TokenmeterConfig, log: Logger) =>
        new UsageTopicPartitions(
          new Kafka({ clientId: `${config.kafka.clientId}-api`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } }),
          config.kafka,
          log,
        ),
      inject: [CONFIG, LOGGER],
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
        partitions: UsageTopicPartitions,
      ) =>
        new SpendAuthorizer(cache, repository, () => prices.current(), {
          holdTtlMs: config.authorize.holdTtlSeconds * 1000,
          holdGraceMs: config.authorize.holdGraceSeconds * 1000,
          fallbackMaxOutputTokens: config.authorize.fallbackMaxOutputTokens,
          clockSkewMs: config.authorize.clockSkewSeconds * 1000,
          maxRetryAfterSeconds: config.authorize.maxRetryAfterSeconds,
          topic: config.kafka.topic,
          topicPartitions: () => partitions.current(),
          onError: (message, err) => log.warn({ err }, message),
        }, credits),
      inject: [CONFIG, SpendStateCache, SpendStateRepository, PriceBookCache, LOGGER, CreditState, UsageTopicPartitions],
    },
    {
      provide: AuthorizeListener,
      useFactory: (
        config: TokenmeterConfig,
        authorizer: SpendAuthorizer,
        guard: IngestTokenGuard,
        throttle: AuthFailureThrottle,
        metrics: HttpMetrics,
        log: Logger,
      ) => new AuthorizeListener(authorizer, guard, throttle, metrics, log, { port: config.authorize.port, host: '0.0.0.0' }),
      inject: [CONFIG, SpendAuthorizer, IngestTokenGuard, AuthFailureThrottle, HttpMetrics, LOGGER],
    },
  ],
  exports: [SpendStateCache, SpendAuthorizer, CreditState, AuthorizeListener],
})
export class AuthorizeModule implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    @Inject(SpendStateCache) private readonly cache: SpendStateCache,
    @Inject(SpendAuthorizer) private readonly authorizer: SpendAuthorizer,
    @Inject(CreditState) private readonly credits: CreditState,
    @Inject(AuthorizeListener) private readonly listener: AuthorizeListener,
    @Inject(UsageTopicPartitions) private readonly partitions: UsageTopicPartitions,
  ) {}

  /** Before the server listens: the first snapshot and price book are loaded (or being retried, if the database is down). */
  async onModuleInit(): Promise<void> {
    await this.partitions.start();
    await this.authorizer.start();
    await this.cache.start();
    await this.credits.start();
  }

  /** After every module's init (the state is loading), like the API's own port; a port in use fails the start. */
  async onApplicationBootstrap(): Promise<void> {
    await this.listener.start();
  }

  /** The lean port stops first, then the listen connection, before the pool (DatabaseModule closes it at shutdown, after this). */
  async onModuleDestroy(): Promise<void> {
    await this.listener.stop();
    await this.authorizer.stop();
    await this.cache.stop();
    await this.credits.stop();
    await this.partitions.stop();
  }
}
