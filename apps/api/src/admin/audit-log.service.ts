import { Injectable } from '@nestjs/common';
import { AuditLogRepository, type AuditListFilter, type AuditRecord } from '@tokenmeter/db';

/** Reads of the audit trail for the API and the dashboard (writes happen inside each audited action). */
@Injectable()
export class AuditLogService {
  constructor(private readonly audit: AuditLogRepository) {}

  /** Newest first, keyset-paginated by id. */
  listEntries(filter: AuditListFilter): Promise<AuditRecord[]> {
    return this.audit.listEntries(filter);
  }
}
