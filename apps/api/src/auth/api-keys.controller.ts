import { Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { cursor, encodeCursor, freeText, idFilter, pageLimit, ValidBody, ValidParam, ValidQuery } from '../common/validation';
import { parseRfc3339Ms } from '@tokenmeter/billing/rfc3339';
import { ApiKeyPageSchema, ApiKeySchema, apiKeyJson, CreatedApiKeySchema } from './api-key-json';
import { ApiKeysService } from '@tokenmeter/auth';
import { ROLES, Roles } from './principal';

const createBody = z
  .object({
    role: z.enum(ROLES, { errorMap: () => ({ message: `must be one of ${ROLES.map((r) => `"${r}"`).join(', ')}` }) }),
    account_id: idFilter.nullish(),
    name: freeText(200).nullish(),
  })
  .strict();

const listQuery = z.object({ account_id: idFilter.optional(), limit: pageLimit, cursor: cursor(2, ([at]) => parseRfc3339Ms(at) !== null) });

// Each route's glue written once: the dashboard's API keys page calls these very functions.

export async function createApiKeyAnswer(keys: ApiKeysService, input: z.output<typeof createBody>, actor: Actor): Promise<z.input<typeof CreatedApiKeySchema>> {
  const { key, record } = await keys.createApiKey({ role: input.role, accountId: input.account_id ?? null, name: input.name ?? null }, actor);
  return { key, ...apiKeyJson(record) };
}

export async function listApiKeyPage(keys: ApiKeysService, q: z.output<typeof listQuery>): Promise<z.input<typeof ApiKeyPageSchema>> {
  const before = q.cursor ? { createdAt: new Date(q.cursor[0]), id: q.cursor[1] } : undefined;
  const rows = await keys.listApiKeys({ accountId: q.account_id, limit: q.limit, before });
  // A full page may have a next one.
  const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
  return { data: rows.map(apiKeyJson), next_cursor: last ? encodeCursor([last.createdAt.toISOString(), last.id]) : null };
}

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
  @ApiAnswer(CreatedApiKeySchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  create(@ValidBody(createBody) input: z.output<typeof createBody>, @CurrentActor() actor: Actor) {
    return createApiKeyAnswer(this.keys, input, actor);
  }

  @Get()
  @ApiOperation({ summary: 'List API keys, newest first (never their secrets or hashes)' })
  @ApiAnswer(ApiKeyPageSchema)
  @errorResponses(...ADMIN_ERRORS)
  list(@ValidQuery(listQuery) q: z.output<typeof listQuery>): Promise<z.input<typeof ApiKeyPageSchema>> {
    return listApiKeyPage(this.keys, q);
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke an API key', description: 'Idempotent. Takes effect within a few seconds in every API process (at once in this one).' })
  @ApiAnswer(ApiKeySchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async revoke(@ValidParam('id', idFilter) id: string, @CurrentActor() actor: Actor) {
    return apiKeyJson(await this.keys.revokeApiKey(id, actor));
  }
}

// The dashboard's API keys page validates with these very schemas.
export { createBody as apiKeyCreateBody, listQuery as apiKeyListQuery };
