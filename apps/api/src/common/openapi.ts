import { applyDecorators } from '@nestjs/common';
import { ApiResponse, type OpenAPIObject } from '@nestjs/swagger';
import type { ZodTypeAny } from 'zod';
import { openApiSchema } from './validation';

/** The one error shape, for the OpenAPI document. */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', example: 'validation_failed' },
        message: { type: 'string', example: 'input_per_mtok: must be a non-negative decimal string' },
        details: { nullable: true, example: { field: 'input_per_mtok' } },
      },
    },
  },
};

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input; details.field names the field',
  401: 'Missing, unknown or revoked credentials',
  403: 'The key lacks the role this route needs',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request body too large',
  429: 'Too many failed authentications from this address; see Retry-After',
  502: 'Stripe failed (after retries); details.retriable says whether a retry may help',
  503: 'Not ready yet (e.g. the spend state is still loading); retry shortly',
};

/** Every admin route can answer these (documented on every operation anyway, see below). */
export const ADMIN_ERRORS = [400, 401, 403] as const;

export function errorResponses(...statuses: number[]) {
  return applyDecorators(...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status] ?? 'Error', schema: ERROR_SCHEMA })));
}

/** A success answer documented from its zod schema (the same one that types the JSON builder). */
export function ApiAnswer(schema: ZodTypeAny, status = 200, description = 'OK') {
  return ApiResponse({ status, description, schema: openApiSchema(schema) as never });
}

/**
 * The answers any operation can give whatever its handler does, added to the document in one
 * place so no route can forget them: 400 (validation, malformed JSON), 404 (unknown ids), 413 (a
 * body over the limit), and for authenticated routes 401, 403 and 429.
 */
export function documentCommonErrors(document: OpenAPIObject): OpenAPIObject {
  for (const operations of Object.values(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const op = operation as { responses: Record<string, unknown>; security?: unknown[]; requestBody?: unknown };
      const statuses = [400, 404];
      if (op.requestBody || method !== 'get') statuses.push(413);
      if (op.security && op.security.length > 0) statuses.push(401, 403, 429);
      for (const status of statuses) {
        op.responses[status] ??= { description: DESCRIPTIONS[status], content: { 'application/json': { schema: ERROR_SCHEMA } } };
      }
    }
  }
  return document;
}
