import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import type { z } from 'zod';
import type { Response } from 'express';
import { choice, rangeQuery } from '../../common/validation';
import { getUsageSummary, listUsageBuckets, TIMESERIES_GROUPS, usageFilterFields } from '../../usage/usage.controller';
import type { UsageSummaryJson } from '../../usage/usage-json';
import { UsageService } from '../../usage/usage.service';
import { type PageRequest, pageContext, pageQuery } from '../page-context';
import { BarChart, Count, DataTable, Freshness, Layout, Money, type PageContext, renderPage, seesAdminPages, Tiles, Time, TotalFoot, withQuery } from '../ui';
import { WebPages } from '../web-session.guard';
import { AccountLink, Choice, Field, formQuery, KeepAccount } from './account-pages';
import { monthSoFar } from './overview.controller';
import { allTokens, type Bucket, csvFileName, headlineTiles, TOKEN_TYPES, tableColumns, type UsageGrouping, usageCsv, viewColumns } from './usage-view';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * The usage page's query: the JSON routes' own fields (range rules, model and key filters), with
 * the page's defaults (this month by day) and one more grouping, token_type, which is the
 * ungrouped time series shown with its per-type tokens and costs.
 */
export const usagePageQuery = rangeQuery(
  { required: true, hourAligned: true },
  { granularity: choice(['hour', 'day'], 'day'), group_by: choice([...TIMESERIES_GROUPS, 'token_type'], 'none'), ...usageFilterFields },
);

/** Rows drawn in the HTML table at most (a 400-day hourly range per model is far more); the CSV has all. */
export const MAX_TABLE_ROWS = 2000;

/** The query with this month filled in for a missing from / to (whole UTC hours either way). */
function withDefaultRange(query: Record<string, unknown>, now: Date): Record<string, unknown> {
  const month = monthSoFar(now);
  return { from: month.from.toISOString(), to: month.to.toISOString(), ...formQuery(query) };
}

const GROUP_LABELS: [UsageGrouping, string][] = [
  ['none', 'Nothing (totals per bucket)'],
  ['model', 'Model'],
  ['api_key', 'API key'],
  ['token_type', 'Token type'],
];

interface UsageView {
  accountId: string;
  q: z.output<typeof usagePageQuery>;
  summary: UsageSummaryJson;
  buckets: Bucket[];
}

/** /app/usage and its CSV: any range and grouping, from the same service calls as /v1/usage/summary and /timeseries. */
@WebPages('account', 'admin')
@Controller('app')
export class UsagePagesController {
  constructor(private readonly usage: UsageService) {}

  /** Two reads whatever the range, through the JSON routes' own functions: the rollup summary (+ freshness) and the buckets. */
  private async load(ctx: PageContext, query: Record<string, unknown>): Promise<UsageView> {
    const q = pageQuery(usagePageQuery, withDefaultRange(query, new Date()));
    // token_type is the ungrouped series, drawn per token type.
    const groupBy = q.group_by === 'token_type' ? 'none' : q.group_by;
    const [summary, series] = await Promise.all([
      getUsageSummary(this.usage, ctx.principal, q),
      listUsageBuckets(this.usage, ctx.principal, { ...q, group_by: groupBy }),
    ]);
    return { accountId: summary.account_id, q, summary, buckets: series.buckets };
  }

  @Get('usage')
  async page(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    if (seesAdminPages(ctx.principal) && !query.account_id) return res.redirect(303, '/app/admin');
    const view = await this.load(ctx, query);
    return renderPage(<UsagePage ctx={ctx} view={view} />);
  }

  @Get('usage.csv')
  async csv(@Req() req: PageRequest, @Res() res: Response, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const { accountId, q, summary, buckets } = await this.load(ctx, query);
    const body = usageCsv(viewColumns(q.granularity, q.group_by), buckets);
    res
      .status(200)
      .set({
        'Content-Type': 'text/csv; charset=utf-8',
        'Content-Disposition': `attachment; filename="${csvFileName(accountId, summary.from, summary.to, q.granularity, q.group_by)}"`,
        'Cache-Control': 'no-store',
      })
      .send(body);
  }
}

function UsagePage(props: { ctx: PageContext; view: UsageView }) {
  const { ctx } = props;
  const { accountId, q, summary, buckets } = props.view;
  const keep = q.account_id;
  // The exact query of this view (defaults resolved), for links and the CSV.
  const viewQuery = {
    from: summary.from,
    to: summary.to,
    granularity: q.granularity,
    group_by: q.group_by,
    model: q.model,
    api_key_id: q.api_key_id,
    account_id: keep,
  };
  const columns = viewColumns(q.granularity, q.group_by);
  const shown = buckets.slice(0, MAX_TABLE_ROWS);
  const t = summary.totals;
  const per = q.granularity === 'day' ? 'UTC day' : 'hour';
  return (
    <Layout ctx={ctx} title="Usage">
      <p class="scope">
        Account <strong>{accountId}</strong>, <Time at={summary.from} /> to <Time at={summary.to} /> (to exclusive)
        {q.model && (
          <>
            , model <strong>{q.model}</strong>
          </>
        )}
        {q.api_key_id && (
          <>
            , API key <strong>{q.api_key_id}</strong>
          </>
        )}
        .
      </p>
      <Freshness completeUpTo={summary.complete_up_to} />
      <UsageFilters q={q} from={summary.from} to={summary.to} />
      <QuickRanges q={viewQuery} />

      <section aria-labelledby="totals-h">
        <h2 id="totals-h">Totals for the range</h2>
        <Tiles id="totals" tiles={[...headlineTiles(t), ['Unpriced requests', <Count n={t.unpriced_requests} />]]} />
        {t.unpriced_requests > 0 && <p class="help">Unpriced requests had no price in force for their model when they happened; they cost nothing here until repriced.</p>}
        <DataTable
          id="totals-by-type"
          caption="Tokens and cost by token type for the range"
          rows={[...TOKEN_TYPES]}
          columns={[
            { label: 'Token type', cell: (r) => r.label },
            { label: 'Tokens', numeric: true, cell: (r) => <Count n={t[`${r.key}_tokens`]} /> },
            { label: 'Cost', numeric: true, cell: (r) => <Money usd={t[`${r.key}_cost_usd`]} /> },
          ]}
          foot={<TotalFoot cells={[<Count n={allTokens(t)} />, <Money usd={t.cost_usd} />]} />}
        />
      </section>

      <section aria-labelledby="series-h">
        <h2 id="series-h">{seriesHeading(q.group_by, per)}</h2>
        <SeriesChart q={q} summary={summary} buckets={buckets} per={per} />
        {buckets.length > shown.length && (
          <p class="notice" role="status">
            Showing the first {shown.length} of {buckets.length} rows; the CSV download has all of them. Choose day buckets or a shorter range to see them here.
          </p>
        )}
        <DataTable
          id="usage-table"
          caption={`${seriesHeading(q.group_by, per)} (non-empty buckets only, oldest first)`}
          rows={shown}
          columns={tableColumns(columns)}
        />
        <p>
          <a href={withQuery('/app/usage.csv', viewQuery)} download>
            Download this table as CSV
          </a>{' '}
          (exact values, RFC 4180).
        </p>
      </section>

      <section aria-labelledby="by-model-h">
        <h2 id="by-model-h">By model</h2>
        <Breakdown
          id="by-model-table"
          caption="Usage and cost by model for the range (largest cost first)"
          what="Model"
          rows={summary.by_model.map((m) => ({ key: m.model, label: m.model, filter: { model: m.model }, ...m }))}
          total={t}
          link={(filter) => withQuery('/app/usage', { ...viewQuery, ...filter })}
        />
      </section>
      <section aria-labelledby="by-key-h">
        <h2 id="by-key-h">By API key</h2>
        <Breakdown
          id="by-key-table"
          caption="Usage and cost by API key for the range (largest cost first)"
          what="API key"
          rows={summary.by_api_key.map((k) => ({ key: k.api_key_id ?? '', label: k.api_key_id ?? '(no key)', filter: k.api_key_id ? { api_key_id: k.api_key_id } : null, ...k }))}
          total={t}
          link={(filter) => withQuery('/app/usage', { ...viewQuery, ...filter })}
        />
      </section>
      <p>
        <AccountLink path="/app/requests" accountId={keep} query={{ from: summary.from, to: summary.to, model: q.model, api_key_id: q.api_key_id }}>
          The requests behind these numbers
        </AccountLink>
      </p>
    </Layout>
  );
}

function seriesHeading(grouping: UsageGrouping, per: string): string {
  if (grouping === 'model') return `Usage per ${per} and model`;
  if (grouping === 'api_key') return `Usage per ${per} and API key`;
  if (grouping === 'token_type') return `Tokens and cost per ${per} by token type`;
  return `Usage per ${per}`;
}

/**
 * Ungrouped: cost per bucket. Grouped: cost per group over the range (the breakdown), since a bar
 * per bucket would have to add groups up here, a second way to compute the API's numbers.
 */
function SeriesChart(props: { q: UsageView['q']; summary: UsageSummaryJson; buckets: Bucket[]; per: string }) {
  const { q, summary } = props;
  if (q.group_by === 'model') {
    return <BarChart title="Cost by model for the range" bars={summary.by_model.map((m) => ({ label: m.model, value: m.cost_usd }))} />;
  }
  if (q.group_by === 'api_key') {
    return <BarChart title="Cost by API key for the range" bars={summary.by_api_key.map((k) => ({ label: k.api_key_id ?? '(no key)', value: k.cost_usd }))} />;
  }
  if (q.group_by === 'token_type') {
    return <BarChart title="Cost by token type for the range" bars={TOKEN_TYPES.map((tt) => ({ label: tt.label, value: summary.totals[`${tt.key}_cost_usd`] }))} />;
  }
  return <BarChart title={`Cost per ${props.per}`} bars={props.buckets.map((b) => ({ label: b.start.slice(0, q.granularity === 'day' ? 10 : 13), value: b.cost_usd }))} />;
}

interface BreakdownRow {
  key: string;
  label: string;
  filter: Record<string, string> | null;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost_usd: string;
}

/** A by-model / by-key table: every row of the summary (they sum exactly to the total under them). */
function Breakdown(props: {
  id: string;
  caption: string;
  what: string;
  rows: BreakdownRow[];
  total: UsageSummaryJson['totals'];
  link: (filter: Record<string, string>) => string;
}) {
  const t = props.total;
  const counts = [t.requests, t.input_tokens, t.output_tokens, t.cache_read_tokens, t.cache_write_tokens];
  return (
    <DataTable
      id={props.id}
      caption={props.caption}
      rows={props.rows}
      columns={[
        { label: props.what, cell: (r) => (r.filter ? <a href={props.link(r.filter)}>{r.label}</a> : r.label) },
        { label: 'Requests', numeric: true, cell: (r) => <Count n={r.requests} /> },
        { label: 'Input tokens', numeric: true, cell: (r) => <Count n={r.input_tokens} /> },
        { label: 'Output tokens', numeric: true, cell: (r) => <Count n={r.output_tokens} /> },
        { label: 'Cache read tokens', numeric: true, cell: (r) => <Count n={r.cache_read_tokens} /> },
        { label: 'Cache write tokens', numeric: true, cell: (r) => <Count n={r.cache_write_tokens} /> },
        { label: 'Cost', numeric: true, cell: (r) => <Money usd={r.cost_usd} /> },
      ]}
      foot={<TotalFoot cells={[...counts.map((n) => <Count n={n} />), <Money usd={t.cost_usd} />]} />}
    />
  );
}

function UsageFilters(props: { q: UsageView['q']; from: string; to: string }) {
  const { q } = props;
  return (
    <form method="get" action="/app/usage" class="filters" aria-label="Usage filters">
      <KeepAccount accountId={q.account_id} />
      <Field name="from" label="From (UTC, whole hour)" value={props.from} help="Inclusive, e.g. 2026-11-01T00:00:00Z" />
      <Field name="to" label="To (UTC, whole hour)" value={props.to} help="Exclusive, at most 400 days after from" />
      <Choice name="granularity" label="Buckets" value={q.granularity} options={[['day', 'UTC days'], ['hour', 'Hours']]} />
      <Choice name="group_by" label="Group by" value={q.group_by} options={GROUP_LABELS} />
      <Field name="model" label="Model" value={q.model} size={16} />
      <Field name="api_key_id" label="API key id" value={q.api_key_id} size={16} />
      <button type="submit">Show</button>
    </form>
  );
}

/** One-click ranges, keeping the other filters. */
function QuickRanges(props: { q: Record<string, string | undefined> }) {
  const now = new Date();
  const month = monthSoFar(now);
  const lastMonth = new Date(Date.UTC(month.from.getUTCFullYear(), month.from.getUTCMonth() - 1, 1));
  const nextHour = month.to.getTime();
  const ranges: [string, Date, Date, 'hour' | 'day'][] = [
    ['This month', month.from, month.to, 'day'],
    ['Last month', lastMonth, month.from, 'day'],
    ['Last 7 days', new Date(nextHour - 7 * DAY_MS), month.to, 'day'],
    ['Last 24 hours', new Date(nextHour - DAY_MS), month.to, 'hour'],
  ];
  return (
    <nav aria-label="Quick ranges" class="quick-ranges">
      <ul>
        {ranges.map(([label, from, to, granularity]) => (
          <li>
            <a href={withQuery('/app/usage', { ...props.q, from: from.toISOString(), to: to.toISOString(), granularity })}>{label}</a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
