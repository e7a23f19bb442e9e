import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { LOGGER, type Logger } from '@tokenmeter/config';
import { NotifierModule } from './notifier.module';

/**
 * The notifier (docs/limits.md "Alerts", "Webhooks"): publishes budget alerts from the outbox to
 * Kafka and delivers them to the admins' webhook endpoints. No HTTP surface. Run as many as you
 * like: they share the work through SKIP LOCKED claims. SIGTERM/SIGINT stop claiming, let the
 * batch and the requests in flight finish and be recorded, then exit 0.
 */
async function bootstrap(): Promise<void> {
  const app = await NestFactory.createApplicationContext(NotifierModule, { logger: ['error', 'warn'] });
  const log = app.get<Logger>(LOGGER);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'notifier stopping');
    app
      .close()
      .then(() => process.exit(0))
      .catch((err) => {
        log.error({ err }, 'notifier did not stop cleanly');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  log.info({ pid: process.pid }, 'notifier started');
}

bootstrap().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
