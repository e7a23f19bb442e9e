import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, errorResponses } from '../common/openapi';
import { cursor, encodeCursor, identifier, pageLimit, parseInput } from '../common/validation';
import { apiKeyJson } from './api-key-json';
import { ApiKeysService } from './api-keys.service';
import { ROLES, Roles } from './principal';

const createBody = z
  .object({
    role: z.enum(ROLES, { errorMap: () => ({ message: `must be one of ${ROLES.map((r) => `"${r}"`).join(', ')}` }) }),
    account_id: identifier.nullish(),
    name: z.string().max(200, 'must be at most 200 characters').nullish(),
  })
  .strict();

const listQuery = z.object({ account_id: identifier.optional(), limit: pageLimit, cursor: cursor(2, ([at]) => !Number.isNaN(Date.parse(at))) });

const KEY_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string', example: 'key_3Xq9...' },
    prefix: { type: 'string', example: 'tm_live_Xa81kPq0' },
    role: { type: 'string', enum: [...ROLES] },
    account_id: { type: 'string', nullable: true },
    name: { type: 'string', nullable: true },
    created_by_key_id: { type: 'string', nullable: true },
    created_at: { type: 'string', format: 'date-time' },
    revoked_at: { type: 'string', format: 'date-time', nullable: true },
    last_used_at: { type: 'string', format: 'date-time', nullable: true, description: 'Updated at most once a minute' },
  },
};

@ApiTags('admin: api keys')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @ApiOperation({
    summary: 'Create an API key',
    description:
      'Answers the key itself (`key`) exactly once: only its sha256 is stored. `prefix` identifies the key in lists and logs. An `account` key needs an existing `account_id` (404 otherwise) and can only read that account. An `auditor` key (no `account_id`) can call every admin read route and no write route.',
  })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['role'],
      additionalProperties: false,
      properties: { role: { type: 'string', enum: [...ROLES] }, account_id: { type: 'string' }, name: { type: 'string', maxLength: 200 } },
    },
  })
  @ApiResponse({ status: 201, schema: { ...KEY_SCHEMA, properties: { key: { type: 'string', example: 'tm_live_Xa81kPq0_...' }, ...KEY_SCHEMA.properties } } })
  @errorResponses(...ADMIN_ERRORS, 404)
  async create(@Body() body: unknown, @CurrentActor() actor: Actor) {
    const input = parseInput(createBody, body, 'body');
    const { key, record } = await this.keys.createApiKey(
      { role: input.role, accountId: input.account_id ?? null, name: input.name ?? null },
      actor,
    );
    return { key, ...apiKeyJson(record) };
  }

  @Get()
  @ApiOperation({ summary: 'List API keys, newest first (never their secrets or hashes)' })
  @ApiQuery({ name: 'account_id', required: false })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page' })
  @ApiResponse({ status: 200, schema: { type: 'object', properties: { data: { type: 'array', items: KEY_SCHEMA }, next_cursor: { type: 'string', nullable: true } } } })
  @errorResponses(...ADMIN_ERRORS)
  async list(@Query() query: unknown) {
    const q = parseInput(listQuery, query, 'query');
    const before = q.cursor ? { createdAt: new Date(q.cursor[0]), id: q.cursor[1] } : undefined;
    const keys = await this.keys.listApiKeys({ accountId: q.account_id, limit: q.limit, before });
    const last = keys.length === q.limit ? keys[keys.length - 1] : undefined;
    return { data: keys.map(apiKeyJson), next_cursor: last ? encodeCursor([last.createdAt.toISOString(), last.id]) : null };
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API key', description: 'Idempotent. Takes effect within a few seconds in every API process (at once in this one).' })
  @ApiResponse({ status: 200, schema: KEY_SCHEMA })
  @errorResponses(...ADMIN_ERRORS, 404)
  async revoke(@Param('id') id: string, @CurrentActor() actor: Actor) {
    return apiKeyJson(await this.keys.revokeApiKey(id, actor));
  }
}
