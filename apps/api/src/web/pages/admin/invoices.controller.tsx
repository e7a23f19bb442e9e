import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { minorUnitsToUsdString } from '@tokenmeter/billing';
import { InvoicesService } from '../../../invoices/invoices.service';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService } from '@tokenmeter/invoicing';
import { closeBody, closePeriod, reconcilePeriod, reconcileQuery } from '../../../invoices/admin-invoices.controller';
import { type CloseSummaryJson, invoiceJson, type InvoiceSummaryJson, type ReconciliationJson } from '../../../invoices/invoice-json';
import { parseInput, period } from '../../../common/validation';
import { type PageRequest, pageContext, pageQuery, pathId } from '../../page-context';
import { CsrfField, DataTable, Layout, Money, type PageContext, renderPage, Time, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { canWrite, checked, Checkbox, Field, formBody, Notice } from './admin-ui';

/** Invoices of one period shown per page (one row per account; the API's own list limit for a period). */
const PERIOD_LIMIT = 1000;

const periodQuery = z.object({ period: period.optional() });

const NOTICES = {
  closed: 'Period closed (audited as invoices.close). The invoices below are as the close left them; a sync_failed one can be retried.',
  retried: 'Stripe sync retried (audited as invoices.retry_sync). The invoice is finalized, or still sync_failed with the reason.',
};

/** The month before `now`, UTC ("2026-11" in December 2026): the period usually being closed. */
export function previousPeriod(now: Date): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

function dollars(minor: number | string): string {
  return minorUnitsToUsdString(String(minor));
}

function PeriodPicker(props: { action: string; period: string; extra?: Record<string, string | undefined> }) {
  return (
    <form method="get" action={props.action} class="filters" aria-label="Period">
      <div class="field">
        <label for="period">Period (calendar month, UTC)</label>
        <input id="period" name="period" type="month" value={props.period} required />
      </div>
      {Object.entries(props.extra ?? {}).map(([k, v]) => v !== undefined && <input type="hidden" name={k} value={v} />)}
      <button type="submit">Show</button>
    </form>
  );
}

/** Invoices by period, closing a period, retrying failed Stripe syncs, the reconciliation report. */
@WebPages('admin')
@Controller('app/admin/invoices')
export class AdminInvoicesPagesController {
  constructor(
    private readonly invoices: InvoicesService,
    @Inject(InvoiceCloseService) private readonly closer: InvoiceCloseService,
    @Inject(InvoiceSyncService) private readonly sync: InvoiceSyncService,
    @Inject(ReconciliationService) private readonly reconciliation: ReconciliationService,
  ) {}

  @Get()
  async list(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const p = pageQuery(periodQuery, query).period ?? previousPeriod(new Date());
    const rows = (await this.invoices.listInvoices({ period: p, limit: PERIOD_LIMIT })).map((r) => invoiceJson(r, null, { admin: true }));
    return renderPage(
      <Layout ctx={ctx} title={`Invoices: ${p}`}>
        <Notice done={query.done} messages={NOTICES} />
        <PeriodPicker action="/app/admin/invoices" period={p} />
        <p>
          <a href={withQuery('/app/admin/invoices/reconciliation', { period: p })}>Reconciliation report for {p}</a>
        </p>
        <DataTable
          id="invoices-table"
          caption={`Invoices of ${p}, by account${rows.length === PERIOD_LIMIT ? ` (the first ${PERIOD_LIMIT})` : ''}`}
          rows={rows}
          empty="No invoices for this period yet: close it below."
          columns={[
            { label: 'Account', cell: (i) => <a href={`/app/admin/accounts/${encodeURIComponent(i.account_id)}`}>{i.account_id}</a> },
            { label: 'Invoice', cell: (i) => <a href={withQuery(`/app/invoices/${encodeURIComponent(i.id)}`, { account_id: i.account_id })}>{i.id}</a> },
            { label: 'Status', cell: (i) => <span class={`status status-${i.status}`}>{i.status}</span> },
            { label: 'Total', numeric: true, cell: (i) => <Money usd={i.total_usd} exact /> },
            { label: 'Exact total', numeric: true, cell: (i) => <Money usd={i.total_exact_usd} exact /> },
            { label: 'Stripe invoice', cell: (i) => i.stripe_invoice_id ?? '' },
            { label: 'Finalized (UTC)', cell: (i) => (i.finalized_at ? <Time at={i.finalized_at} /> : '') },
            { label: 'Sync', cell: (i) => <SyncCell ctx={ctx} invoice={i} /> },
          ]}
        />
        {canWrite(ctx) && <CloseForm ctx={ctx} period={p} />}
      </Layout>,
    );
  }

  /** POST /admin/invoices/close from the page: the same schema and the same call (the close audits itself). */
  @Post('close')
  async close(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown) {
    const form = formBody(body);
    const input = parseInput(
      closeBody,
      { period: form.period, account_id: form.account_id, dry_run: checked(body, 'dry_run'), force: checked(body, 'force'), finalize: checked(body, 'finalize') },
      'body',
    );
    const summary = await closePeriod(this.closer, input, req.principal!.keyId);
    if (!summary.dry_run) return res.redirect(303, withQuery('/app/admin/invoices', { period: input.period, done: 'closed' }));
    // A dry run changed nothing: its report is the answer.
    return renderPage(
      <Layout ctx={pageContext(req)} title={`Close ${summary.period}: dry run`}>
        <CloseReport summary={summary} />
        <p>
          <a href={withQuery('/app/admin/invoices', { period: summary.period })}>Back to the invoices of {summary.period}</a>
        </p>
      </Layout>,
    );
  }

  /** POST /admin/invoices/{id}/retry-sync from the page. */
  @Post(':id/retry-sync')
  @HttpCode(303)
  async retrySync(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Param('id') rawId: string) {
    const id = pathId('id', rawId);
    await this.sync.retrySync(id, req.principal!.keyId);
    const after = await this.invoices.getInvoice(id);
    res.redirect(303, withQuery('/app/admin/invoices', { period: after?.period, done: 'retried' }));
  }

  @Get('reconciliation')
  async reconcile(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(reconcileQuery, { period: previousPeriod(new Date()), ...query });
    const report = await reconcilePeriod(this.reconciliation, q);
    return renderPage(
      <Layout ctx={ctx} title={`Reconciliation: ${report.period}`}>
        <PeriodPicker action="/app/admin/invoices/reconciliation" period={report.period} extra={{ account_id: q.account_id, stripe: q.stripe }} />
        <p class={report.mismatched_accounts > 0 ? 'error' : undefined} role="status" id="reconciliation-summary">
          {report.mismatched_accounts === 0
            ? `All ${report.accounts} accounts agree: raw events = rollups, invoice header = lines = claimed events${q.stripe === 'true' ? ' = Stripe' : ''}.`
            : `${report.mismatched_accounts} of ${report.accounts} accounts have mismatches (highlighted).`}
        </p>
        <p>
          {q.stripe === 'true' ? (
            <a href={withQuery('/app/admin/invoices/reconciliation', { period: report.period, account_id: q.account_id, stripe: 'false' })}>Without the Stripe totals</a>
          ) : (
            <a href={withQuery('/app/admin/invoices/reconciliation', { period: report.period, account_id: q.account_id })}>With the Stripe totals</a>
          )}
        </p>
        <ReconciliationTable report={report} />
      </Layout>,
    );
  }
}

function SyncCell(props: { ctx: PageContext; invoice: InvoiceSummaryJson }) {
  const i = props.invoice;
  const retriable = i.status === 'sync_failed' || i.status === 'finalizing';
  return (
    <>
      {i.sync_attempts ? `${i.sync_attempts} attempt${i.sync_attempts === 1 ? '' : 's'}` : ''}
      {i.sync_error && <p class="error">{i.sync_error}</p>}
      {retriable && canWrite(props.ctx) && (
        <form method="post" action={`/app/admin/invoices/${encodeURIComponent(i.id)}/retry-sync`}>
          <CsrfField ctx={props.ctx} />
          <button type="submit" aria-label={`Retry the Stripe sync of ${i.id}`}>
            Retry sync
          </button>
        </form>
      )}
    </>
  );
}

function CloseForm(props: { ctx: PageContext; period: string }) {
  return (
    <section aria-labelledby="close">
      <h2 id="close">Close {props.period}</h2>
      <form method="post" action="/app/admin/invoices/close" class="stack" id="close-form">
        <CsrfField ctx={props.ctx} />
        <input type="hidden" name="period" value={props.period} />
        <Field id="close-account" name="account_id" label="Only this account (optional)" help="Empty: every account with usage." />
        <Checkbox id="close-finalize" name="finalize" label="Finalize and push to Stripe" checked help="Unchecked: build the drafts and push nothing." />
        <Checkbox id="close-force" name="force" label="Force" help="Close although ingestion is not complete past the period end (audited as invoices.close.forced)." />
        <Checkbox id="close-dry-run" name="dry_run" label="Dry run" help="Build and report, change nothing." />
        <button type="submit">Close {props.period}</button>
      </form>
    </section>
  );
}

function CloseReport(props: { summary: CloseSummaryJson }) {
  const s = props.summary;
  return (
    <>
      <p class="notice" role="status">
        Dry run: nothing was written and nothing went to Stripe. {s.accounts} accounts; {s.created} would be created,
        {s.updated} updated, {s.already_final} already final; total <Money usd={dollars(s.total_minor)} exact />.
      </p>
      <DataTable
        id="close-report"
        caption={`What closing ${s.period} would do, per account`}
        rows={s.invoices}
        columns={[
          { label: 'Account', cell: (r) => r.account_id },
          { label: 'Outcome', cell: (r) => r.outcome },
          { label: 'Invoice', cell: (r) => r.invoice_id ?? '(new)' },
          { label: 'Lines', numeric: true, cell: (r) => r.lines },
          { label: 'Total', numeric: true, cell: (r) => <Money usd={dollars(r.total_minor)} exact /> },
          { label: 'Exact total', numeric: true, cell: (r) => <Money usd={r.total_exact_usd} exact /> },
        ]}
      />
    </>
  );
}

const MISMATCH_TEXT: Record<string, string> = {
  raw_vs_rollup: 'raw events ≠ rollups',
  invoice_header_vs_lines: 'invoice header ≠ its lines',
  invoice_vs_claimed_events: 'invoice ≠ its claimed events',
  stripe_total_vs_invoice: 'Stripe total ≠ invoice',
  stripe_unreachable: 'Stripe unreachable',
};

/** The report per account; rows with a mismatch carry class="mismatch" (and say which, in words). */
function ReconciliationTable(props: { report: ReconciliationJson }) {
  const cols = ['Account', 'Mismatches', 'Raw events', 'Raw total', 'Rollup requests', 'Rollup total', 'Unbilled', 'Unpriced', 'Invoice', 'Status', 'Invoice exact', 'Invoice total', 'Stripe total'];
  const numeric = new Set([2, 3, 4, 5, 6, 7, 10, 11, 12]);
  const money = (x: string | null) => (x === null ? '' : <Money usd={x} exact />);
  const minor = (x: string | null) => (x === null ? '' : <Money usd={dollars(x)} exact />);
  return (
    <div class="table-wrap">
      <table id="reconciliation-table">
        <caption>{`Reconciliation of ${props.report.period}, per account`}</caption>
        <thead>
          <tr>
            {cols.map((c, i) => (
              <th scope="col" class={numeric.has(i) ? 'num' : undefined}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.report.accounts_detail.length === 0 ? (
            <tr>
              <td colSpan={cols.length}>No usage or invoices in this period.</td>
            </tr>
          ) : (
            props.report.accounts_detail.map((d) => (
              <tr class={d.mismatches.length > 0 ? 'mismatch' : undefined}>
                <td>
                  <a href={`/app/admin/accounts/${encodeURIComponent(d.account_id)}`}>{d.account_id}</a>
                </td>
                <td>{d.mismatches.length === 0 ? 'none' : <strong>{d.mismatches.map((m) => MISMATCH_TEXT[m] ?? m).join('; ')}</strong>}</td>
                <td class="num">
                  <data value={d.raw_events}>{d.raw_events}</data>
                </td>
                <td class="num">{money(d.raw_total_usd)}</td>
                <td class="num">
                  <data value={d.rollup_requests}>{d.rollup_requests}</data>
                </td>
                <td class="num">{money(d.rollup_total_usd)}</td>
                <td class="num">{money(d.unbilled_usd)}</td>
                <td class="num">
                  <data value={d.unpriced_events}>{d.unpriced_events}</data>
                </td>
                <td>{d.invoice_id ?? ''}</td>
                <td>{d.invoice_status ?? ''}</td>
                <td class="num">{money(d.invoice_exact_usd)}</td>
                <td class="num">{minor(d.invoice_total_minor)}</td>
                <td class="num">{minor(d.stripe_total_minor)}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
