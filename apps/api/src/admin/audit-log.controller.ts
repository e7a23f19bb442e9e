import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AuditLogService } from './audit-log.service';
import { Roles } from '../auth/principal';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { encodeCursor, idCursor, pageLimit, textFilter, ValidQuery } from '../common/validation';
import { AuditPageSchema, auditJson } from './admin-json';

const query = z.object({
  limit: pageLimit,
  cursor: idCursor,
  action: textFilter(100).optional().describe('e.g. api_key.revoke'),
  target_id: textFilter(300).optional(),
});

/** One page of the log as the route answers it; the dashboard's audit page draws this very answer. */
export async function listAuditPage(audit: AuditLogService, q: z.output<typeof query>): Promise<z.input<typeof AuditPageSchema>> {
  const entries = await audit.listEntries({ beforeId: q.cursor, limit: q.limit, action: q.action, targetId: q.target_id });
  // A full page may have a next one.
  const last = entries.length === q.limit ? entries[entries.length - 1] : undefined;
  return { data: entries.map(auditJson), next_cursor: last ? encodeCursor([last.id]) : null };
}

@ApiTags('admin: audit')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/audit-log')
export class AuditLogController {
  constructor(private readonly audit: AuditLogService) {}

  @Get()
  @ApiOperation({ summary: 'Every admin write, newest first (append-only: the database refuses UPDATE and DELETE)' })
  @ApiAnswer(AuditPageSchema)
  @errorResponses(...ADMIN_ERRORS)
  list(@ValidQuery(query) q: z.output<typeof query>): Promise<z.input<typeof AuditPageSchema>> {
    return listAuditPage(this.audit, q);
  }
}

// The dashboard's audit log page validates with this very schema.
export { query as auditLogQuery };
