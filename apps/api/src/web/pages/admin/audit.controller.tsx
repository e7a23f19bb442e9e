import { Controller, Get, Query, Req } from '@nestjs/common';
import { AuditLogService } from '../../../admin/audit-log.service';
import { auditLogQuery, listAuditPage } from '../../../admin/audit-log.controller';
import { type PageRequest, pageContext, pageQuery } from '../../page-context';
import { DataTable, Layout, NextPage, renderPage, Time } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { Field, FilterForm, JsonBlock } from './admin-ui';

/** GET /admin/audit-log as a page: every admin write, newest first, keyset pages. */
@WebPages('admin')
@Controller('app/admin')
export class AdminAuditController {
  constructor(private readonly audit: AuditLogService) {}

  @Get('audit')
  async list(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(auditLogQuery, query);
    const page = await listAuditPage(this.audit, q);
    return renderPage(
      <Layout ctx={ctx} title="Audit log">
        <p class="help">Every admin write, from the API, the CLI and these pages alike, newest first. The log is append-only: the database refuses changes to it.</p>
        <FilterForm action="/app/admin/audit" label="Audit log filters">
          <Field id="action" name="action" label="Action" value={q.action} placeholder="api_key.revoke" />
          <Field id="target_id" name="target_id" label="Target id" value={q.target_id} />
        </FilterForm>
        <DataTable
          id="audit-table"
          caption="Audit entries, newest first"
          rows={page.data}
          empty="No entries match."
          columns={[
            { label: 'At (UTC)', cell: (e) => <Time at={e.at} /> },
            { label: 'Action', cell: (e) => <code>{e.action}</code> },
            { label: 'Target', cell: (e) => `${e.target_type} ${e.target_id}` },
            { label: 'Actor key', cell: (e) => e.actor_key_id ?? '(CLI or bootstrap)' },
            { label: 'Request id', cell: (e) => e.request_id ?? '' },
            {
              label: 'Change',
              cell: (e) => (
                <>
                  {e.before !== null && <JsonBlock value={e.before} label="Before" />}
                  <JsonBlock value={e.after} label="After" />
                </>
              ),
            },
          ]}
        />
        <NextPage
          path="/app/admin/audit"
          query={{ action: q.action, target_id: q.target_id, limit: typeof query.limit === 'string' ? query.limit : undefined }}
          cursor={page.next_cursor}
        />
      </Layout>,
    );
  }
}
