import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { eventsQuery, exportQuery, listAdminReceipts, sendAdminEventExport } from '../../../admin-usage/admin-usage.controller';
import { AdminUsageService } from '../../../admin-usage/admin-usage.service';
import type { ExportFormat } from '../../../admin-usage/event-export';
import { UsageService } from '../../../usage/usage.service';
import { type PageRequest, pageContext, pageQuery } from '../../page-context';
import { Count, DataTable, Layout, Money, NextPage, renderPage, Time, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { Field, FilterForm, INSTANT_HELP, isoOrEmpty, Select } from './admin-ui';

const FILTER_NAMES = ['from', 'to', 'account_id', 'model', 'api_key_id', 'event_id', 'request_id', 'flagged'] as const;

/** The filters of a query as given (strings), for links that keep them. */
function filtersOf(query: Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of FILTER_NAMES) if (typeof query[k] === 'string') out[k] = query[k] as string;
  return out;
}

/** Event search across accounts (GET /admin/events) and its CSV/NDJSON export (GET /admin/events/export). */
@WebPages('admin')
@Controller('app/admin')
export class AdminEventsController {
  constructor(
    private readonly admin: AdminUsageService,
    private readonly usage: UsageService,
  ) {}

  @Get('events')
  async events(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(eventsQuery, query);
    const page = await listAdminReceipts(this.usage, q);
    const filters = filtersOf(query);
    return renderPage(
      <Layout ctx={ctx} title="Events">
        <FilterForm action="/app/admin/events" label="Event filters">
          <Field id="from" name="from" label="From (UTC, inclusive)" value={isoOrEmpty(q.from)} help={INSTANT_HELP} />
          <Field id="to" name="to" label="To (UTC, exclusive)" value={isoOrEmpty(q.to)} />
          <Field id="account_id" name="account_id" label="Account" value={q.account_id} />
          <Field id="model" name="model" label="Model" value={q.model} />
          <Field id="api_key_id" name="api_key_id" label="API key id" value={q.api_key_id} />
          <Field id="event_id" name="event_id" label="Event id" value={q.event_id} />
          <Field id="request_id" name="request_id" label="Request id" value={q.request_id} />
          <Select
            id="flagged"
            name="flagged"
            label="Flags"
            value={q.flagged === undefined ? '' : String(q.flagged)}
            options={[
              ['', 'Any'],
              ['true', 'Flagged only'],
              ['false', 'Not flagged only'],
            ]}
          />
        </FilterForm>
        <p>
          Export every matching event (oldest first, streamed):{' '}
          <a href={withQuery('/app/admin/events.csv', filters)} download>
            CSV
          </a>{' '}
          ·{' '}
          <a href={withQuery('/app/admin/events.ndjson', filters)} download>
            NDJSON
          </a>
        </p>
        <DataTable
          id="events-table"
          caption="Matching events, newest first"
          rows={page.data}
          empty="No event matches these filters."
          columns={[
            { label: 'Occurred (UTC)', cell: (e) => <Time at={e.occurred_at} /> },
            { label: 'Event id', cell: (e) => e.event_id },
            { label: 'Account', cell: (e) => <a href={`/app/admin/accounts/${encodeURIComponent(e.account_id)}`}>{e.account_id}</a> },
            { label: 'API key', cell: (e) => e.api_key_id ?? '(none)' },
            { label: 'Model', cell: (e) => e.model },
            { label: 'Input', numeric: true, cell: (e) => <Count n={e.tokens.input_tokens} /> },
            { label: 'Output', numeric: true, cell: (e) => <Count n={e.tokens.output_tokens} /> },
            { label: 'Cache read', numeric: true, cell: (e) => <Count n={e.tokens.cache_read_tokens} /> },
            { label: 'Cache write', numeric: true, cell: (e) => <Count n={e.tokens.cache_write_tokens} /> },
            { label: 'Cost', numeric: true, cell: (e) => (e.costs === null ? 'unpriced' : <Money usd={e.costs.cost_usd} exact />) },
            { label: 'Flags', cell: (e) => e.flags.join(', ') },
            { label: 'Invoice', cell: (e) => e.invoice_id ?? '' },
          ]}
        />
        <NextPage path="/app/admin/events" query={{ ...filters, limit: typeof query.limit === 'string' ? query.limit : undefined }} cursor={page.next_cursor} />
      </Layout>,
    );
  }

  @Get('events.csv')
  exportCsv(@Query() query: Record<string, unknown>, @Res() res: Response) {
    return this.export('csv', query, res);
  }

  @Get('events.ndjson')
  exportNdjson(@Query() query: Record<string, unknown>, @Res() res: Response) {
    return this.export('ndjson', query, res);
  }

  /** As GET /admin/events/export: the same query schema, stream and sender. */
  private async export(format: ExportFormat, query: Record<string, unknown>, res: Response): Promise<void> {
    const q = pageQuery(exportQuery, { ...query, format });
    await sendAdminEventExport(this.admin, q, res);
  }
}
