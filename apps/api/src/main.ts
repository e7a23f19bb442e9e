import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { createApiApp } from './app';

async function bootstrap(): Promise<void> {
  const app = await createApiApp();
  const config = app.get<TokenmeterConfig>(CONFIG);
  await app.listen(config.api.port, '0.0.0.0');
  const shutdown = () => void app.close().then(() => process.exit(0), () => process.exit(1));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  app.get<Logger>(LOGGER).info({ url: `http://127.0.0.1:${config.api.port}`, docs: `http://127.0.0.1:${config.api.port}/docs` }, 'api listening');
}

bootstrap().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
