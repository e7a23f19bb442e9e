import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';

/** The one error shape, for the OpenAPI document. */
export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
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
  401: 'Missing, unknown or revoked API key',
  403: 'The key is not an admin key',
  404: 'Not found',
  409: 'Conflict',
};

/** Every admin route can answer these. */
export const ADMIN_ERRORS = [400, 401, 403] as const;

export function errorResponses(...statuses: number[]) {
  return applyDecorators(...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status] ?? 'Error', schema: ERROR_SCHEMA })));
}
