import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { ApiModule } from './api.module';
import { documentCommonErrors } from './common/openapi';
import { applyHttpSecurity } from './http-security';

/** Builds the HTTP application (used by main.ts and by the e2e tests, which listen on port 0). */
export async function createApiApp(): Promise<NestExpressApplication> {
  // Body parsers (with their size limits and the Stripe webhook's raw body) are installed by
  // applyHttpSecurity, after the security headers, so that even a refused body gets them.
  const app = await NestFactory.create<NestExpressApplication>(ApiModule, { logger: ['error', 'warn'], bodyParser: false });
  applyHttpSecurity(app, app.get<TokenmeterConfig>(CONFIG));
  const document = documentCommonErrors(
    SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('Tokenmeter').setVersion('1').addBearerAuth().build()),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json' });
  return app;
}
