import { Controller, Get, Query, Req } from '@nestjs/common';
import {
  conflictsQuery,
  listEventConflicts,
  listRejectedEvents,
  listUnpricedUsage,
  rejectedQuery,
  unpricedQuery,
} from '../../../admin-usage/admin-usage.controller';
import { AdminUsageService } from '../../../admin-usage/admin-usage.service';
import { type PageRequest, pageContext, pageQuery } from '../../page-context';
import { Count, DataTable, Layout, NextPage, renderPage, Time, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { Field, FilterForm, INSTANT_HELP, isoOrEmpty, Select } from './admin-ui';

function given(query: Record<string, unknown>, names: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of names) if (typeof query[k] === 'string') out[k] = query[k] as string;
  return out;
}

/** A raw payload exactly as received, as text (escaped: a payload is attacker-controlled). */
function RawPayload(props: { payload: string }) {
  return (
    <details class="json">
      <summary>Raw payload ({props.payload.length} characters)</summary>
      <pre>{props.payload}</pre>
    </details>
  );
}

/** What ingest refused or could not price: GET /admin/rejected-events, /admin/event-conflicts, /admin/unpriced-usage. */
@WebPages('admin')
@Controller('app/admin')
export class AdminIngestAuditController {
  constructor(private readonly admin: AdminUsageService) {}

  @Get('rejected')
  async rejected(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(rejectedQuery, query);
    const page = await listRejectedEvents(this.admin, q);
    return renderPage(
      <Layout ctx={ctx} title="Rejected events">
        <p class="help">Messages ingest refused, with the reason and the payload exactly as received. Nothing here was counted or billed.</p>
        <FilterForm action="/app/admin/rejected" label="Rejected event filters">
          <Field id="from" name="from" label="Received from (UTC)" value={isoOrEmpty(q.from)} help={INSTANT_HELP} />
          <Field id="to" name="to" label="Received before (UTC)" value={isoOrEmpty(q.to)} />
          <Field id="reason_code" name="reason_code" label="Reason code" value={q.reason_code} placeholder="schema" />
          <Select
            id="source"
            name="source"
            label="Source"
            value={q.source ?? ''}
            options={[
              ['', 'Any'],
              ['kafka', 'Kafka'],
              ['http', 'HTTP'],
            ]}
          />
          <Field id="event_id" name="event_id" label="Event id" value={q.event_id} />
        </FilterForm>
        <DataTable
          id="rejected-table"
          caption="Rejected events, newest first"
          rows={page.data}
          empty="Nothing rejected with these filters."
          columns={[
            { label: 'Received (UTC)', cell: (r) => <Time at={r.received_at} /> },
            { label: 'Source', cell: (r) => (r.source === 'kafka' ? `kafka ${r.topic ?? ''}[${r.partition ?? ''}]@${r.offset ?? ''}` : 'http') },
            { label: 'Event id', cell: (r) => r.event_id ?? '(none)' },
            { label: 'Reason code', cell: (r) => <code>{r.reason_code}</code> },
            { label: 'Reason', cell: (r) => r.reason },
            { label: 'Payload', cell: (r) => <RawPayload payload={r.raw_payload} /> },
          ]}
        />
        <NextPage path="/app/admin/rejected" query={given(query, ['from', 'to', 'reason_code', 'source', 'event_id', 'limit'])} cursor={page.next_cursor} />
      </Layout>,
    );
  }

  @Get('conflicts')
  async conflicts(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(conflictsQuery, query);
    const page = await listEventConflicts(this.admin, q);
    return renderPage(
      <Layout ctx={ctx} title="Event conflicts">
        <p class="help">An event id sent again with a different payload. The first event stands; the later payload is kept here and not counted.</p>
        <FilterForm action="/app/admin/conflicts" label="Conflict filters">
          <Field id="from" name="from" label="Received from (UTC)" value={isoOrEmpty(q.from)} help={INSTANT_HELP} />
          <Field id="to" name="to" label="Received before (UTC)" value={isoOrEmpty(q.to)} />
          <Field id="event_id" name="event_id" label="Event id" value={q.event_id} />
        </FilterForm>
        <DataTable
          id="conflicts-table"
          caption="Conflicting events, newest first"
          rows={page.data}
          empty="No conflicts with these filters."
          columns={[
            { label: 'Received (UTC)', cell: (c) => <Time at={c.received_at} /> },
            { label: 'Event id', cell: (c) => <a href={withQuery('/app/admin/events', { event_id: c.event_id })}>{c.event_id}</a> },
            { label: 'Source', cell: (c) => c.source },
            { label: 'Stored hash', cell: (c) => <code class="hash">{c.existing_hash}</code> },
            { label: 'This payload’s hash', cell: (c) => <code class="hash">{c.payload_hash}</code> },
            { label: 'Payload', cell: (c) => <RawPayload payload={c.raw_payload} /> },
          ]}
        />
        <NextPage path="/app/admin/conflicts" query={given(query, ['from', 'to', 'event_id', 'limit'])} cursor={page.next_cursor} />
      </Layout>,
    );
  }

  @Get('unpriced')
  async unpriced(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(unpricedQuery, query);
    const report = await listUnpricedUsage(this.admin, q);
    return renderPage(
      <Layout ctx={ctx} title="Unpriced usage">
        <p class="help">
          Usage with no price in force when it happened. It is counted but costs nothing until a price version covers it and its range is repriced: add the
          version in the <a href="/app/admin/prices">price book</a>, then <a href="/app/admin/reprice">reprice</a>.
        </p>
        <FilterForm action="/app/admin/unpriced" label="Unpriced usage filters">
          <Field id="from" name="from" label="From (UTC, inclusive)" value={isoOrEmpty(q.from)} help={INSTANT_HELP} />
          <Field id="to" name="to" label="To (UTC, exclusive)" value={isoOrEmpty(q.to)} />
          <Field id="account_id" name="account_id" label="Account" value={q.account_id} />
          <Field id="model" name="model" label="Model" value={q.model} />
        </FilterForm>
        <DataTable
          id="unpriced-table"
          caption="Unpriced events by model and account"
          rows={report.data}
          empty="No unpriced usage with these filters."
          columns={[
            { label: 'Model', cell: (u) => u.model },
            { label: 'Account', cell: (u) => <a href={`/app/admin/accounts/${encodeURIComponent(u.account_id)}`}>{u.account_id}</a> },
            { label: 'Events', numeric: true, cell: (u) => <Count n={u.events} /> },
            { label: 'Input tokens', numeric: true, cell: (u) => <Count n={u.input_tokens} /> },
            { label: 'Output tokens', numeric: true, cell: (u) => <Count n={u.output_tokens} /> },
            { label: 'Cache read', numeric: true, cell: (u) => <Count n={u.cache_read_tokens} /> },
            { label: 'Cache write', numeric: true, cell: (u) => <Count n={u.cache_write_tokens} /> },
            { label: 'First (UTC)', cell: (u) => <Time at={u.first_occurred_at} /> },
            { label: 'Last (UTC)', cell: (u) => <Time at={u.last_occurred_at} /> },
            {
              label: 'Reprice',
              cell: (u) => (
                <a href={withQuery('/app/admin/reprice', { from: u.first_occurred_at, to: new Date(Date.parse(u.last_occurred_at) + 1).toISOString(), account_id: u.account_id })}>
                  Reprice this range
                </a>
              ),
            },
          ]}
        />
      </Layout>,
    );
  }
}
