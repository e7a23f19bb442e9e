import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { HttpMetrics } from './http-metrics';
import { MetricsController } from './metrics.controller';
import { RequestObserverMiddleware } from './request-observer.middleware';

/** Request ids, one structured log line per request, HTTP latency by route, and /metrics. */
@Module({
  controllers: [MetricsController],
  providers: [{ provide: HttpMetrics, useFactory: () => new HttpMetrics() }],
  // The lean authorize port (AuthorizeModule) records into the same registry.
  exports: [HttpMetrics],
})
export class ObservabilityModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(RequestObserverMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
