import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { ApiModule } from './api.module';
import { documentCommonErrors } from './common/openapi';

/** Builds the HTTP application (used by main.ts and by the e2e tests, which listen on port 0). */
export async function createApiApp(): Promise<NestExpressApplication> {
  // rawBody: the JSON parser also keeps the exact bytes on req.rawBody (the same buffer, no copy):
  // Stripe webhook signatures are computed over them.
  const app = await NestFactory.create<NestExpressApplication>(ApiModule, { logger: ['error', 'warn'], bodyParser: false, rawBody: true });
  // 1000 events with up to 4 KiB of metadata each.
  app.useBodyParser('json', { limit: '8mb' });
  const document = documentCommonErrors(
    SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('Tokenmeter').setVersion('1').addBearerAuth().build()),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json' });
  return app;
}
