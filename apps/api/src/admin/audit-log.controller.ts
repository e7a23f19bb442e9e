import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AuditLogRepository } from '@tokenmeter/db';
import { Roles } from '../auth/principal';
import { ADMIN_ERRORS, errorResponses } from '../common/openapi';
import { encodeCursor, idCursor, pageLimit, textFilter, ValidQuery } from '../common/validation';
import { auditJson } from './admin-json';

const query = z.object({
  limit: pageLimit,
  cursor: idCursor,
  action: textFilter(100).optional().describe('e.g. api_key.revoke'),
  target_id: textFilter(300).optional(),
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
  @ApiResponse({ status: 200, schema: { type: 'object', properties: { data: { type: 'array', items: ENTRY_SCHEMA }, next_cursor: { type: 'string', nullable: true } } } })
  @errorResponses(...ADMIN_ERRORS)
  async list(@ValidQuery(query) q: z.output<typeof query>) {
    const entries = await this.audit.listEntries({ beforeId: q.cursor, limit: q.limit, action: q.action, targetId: q.target_id });
    const last = entries.length === q.limit ? entries[entries.length - 1] : undefined;
    return { data: entries.map(auditJson), next_cursor: last ? encodeCursor([last.id]) : null };
  }
}
