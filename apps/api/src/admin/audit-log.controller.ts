import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AuditLogRepository } from '@tokenmeter/db';
import { Roles } from '../auth/principal';
import { ADMIN_ERRORS, errorResponses } from '../common/openapi';
import { cursor, encodeCursor, pageLimit, parseInput } from '../common/validation';
import { auditJson } from './admin-json';

const query = z.object({
  limit: pageLimit,
  cursor: cursor(1, ([id]) => /^\d{1,18}$/.test(id)),
  action: z.string().max(100).optional(),
  target_id: z.string().max(300).optional(),
});

const ENTRY_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    actor_key_id: { type: 'string', nullable: true, description: 'null: CLI or start-up bootstrap' },
    action: { type: 'string', example: 'account.update' },
    target_type: { type: 'string', example: 'account' },
    target_id: { type: 'string' },
    before: { type: 'object', nullable: true },
    after: { type: 'object', nullable: true },
    request_id: { type: 'string', nullable: true },
  },
};

@ApiTags('admin: audit')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/audit-log')
export class AuditLogController {
  // A read of one table with no rules of its own: a service would only forward the call.
  constructor(private readonly audit: AuditLogRepository) {}

  @Get()
  @ApiOperation({ summary: 'Every admin write, newest first (append-only: the database refuses UPDATE and DELETE)' })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page' })
  @ApiQuery({ name: 'action', required: false, example: 'api_key.revoke' })
  @ApiQuery({ name: 'target_id', required: false })
  @ApiResponse({ status: 200, schema: { type: 'object', properties: { data: { type: 'array', items: ENTRY_SCHEMA }, next_cursor: { type: 'string', nullable: true } } } })
  @errorResponses(...ADMIN_ERRORS)
  async list(@Query() raw: unknown) {
    const q = parseInput(query, raw, 'query');
    const entries = await this.audit.listEntries({ beforeId: q.cursor?.[0], limit: q.limit, action: q.action, targetId: q.target_id });
    const last = entries.length === q.limit ? entries[entries.length - 1] : undefined;
    return { data: entries.map(auditJson), next_cursor: last ? encodeCursor([last.id]) : null };
  }
}
