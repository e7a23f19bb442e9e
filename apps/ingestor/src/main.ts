import 'reflect-metadata';

// The DLQ producer keeps kafkajs' default partitioner (keyed by account id); silence its v2 notice.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import cluster from 'node:cluster';
import { NestFactory } from '@nestjs/core';
import { createLogger, LOGGER, loadConfig, type Logger } from '@tokenmeter/config';
import { IngestorModule } from './ingestor.module';
import { superviseIngestors } from './supervisor';

/**
 * The ingestor: a Kafka consumer with no HTTP surface. SIGTERM/SIGINT finish the chunk in
 * flight, commit its offsets and leave the consumer group; then the process exits 0.
 * With INGESTOR_PROCESSES > 1 this process supervises that many of them (see supervisor.ts).
 */
async function bootstrap(): Promise<void> {
  const app = await NestFactory.createApplicationContext(IngestorModule, { logger: ['error', 'warn'] });
  const log = app.get<Logger>(LOGGER);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'ingestor stopping');
    app
      .close()
      .then(() => process.exit(0))
      .catch((err) => {
        log.error({ err }, 'ingestor did not stop cleanly');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  log.info({ pid: process.pid }, cluster.isWorker ? 'ingestor process started' : 'ingestor started');
}

async function main(): Promise<void> {
  // Validated here too, so a bad setting stops the supervisor instead of every process it starts.
  const config = loadConfig();
  if (config.ingest.processes > 1 && cluster.isPrimary) {
    await superviseIngestors(config.ingest.processes, config.ingest.metricsPort, createLogger('tokenmeter', config.logLevel));
    return;
  }
  await bootstrap();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
