import { Body, Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { AdminRepriceService } from '../../../admin/admin-reprice.service';
import { repriceBody, repriceRange } from '../../../admin/reprice.controller';
import { idFilter, instant, parseInput } from '../../../common/validation';
import { type PageRequest, pageContext, pageQuery } from '../../page-context';
import { Count, CsrfField, DataTable, Layout, Money, type PageContext, renderPage, TotalFoot, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { actorOf, canWrite, Field, formBody, INSTANT_HELP, isoOrEmpty, Notice } from './admin-ui';

// The GET form is only prefilled from the URL; what is submitted is checked by the API's body schema.
const prefill = z.object({
  from: instant.optional().catch(undefined),
  to: instant.optional().catch(undefined),
  account_id: idFilter.optional().catch(undefined),
});

const NOTICES = {
  applied: 'Reprice applied (audited as usage.reprice, with the cost before and after). The range’s events and hourly rollups now carry the new costs.',
};

interface Scope {
  from: string;
  to: string;
  account_id?: string;
}

function ScopeFields(props: { scope: Partial<Scope> }) {
  return (
    <>
      <Field id="from" name="from" label="From (inclusive)" value={props.scope.from} required help={INSTANT_HELP} />
      <Field id="to" name="to" label="To (exclusive)" value={props.scope.to} required />
      <Field id="account_id" name="account_id" label="Account (optional)" value={props.scope.account_id} help="Empty: every account." />
    </>
  );
}

function RepriceForm(props: { ctx: PageContext; scope: Partial<Scope> }) {
  return (
    <form method="post" action="/app/admin/reprice" class="stack" id="reprice-form">
      <CsrfField ctx={props.ctx} />
      <ScopeFields scope={props.scope} />
      <button type="submit">Preview (dry run)</button>
    </form>
  );
}

/**
 * POST /admin/reprice from the dashboard: a dry run always comes first and shows the diff per
 * (account, model); "Apply" posts the same scope again with dry_run false. Apply recomputes from
 * the price book as it is then (the preview is not replayed), exactly as the API does.
 */
@WebPages('admin')
@Controller('app/admin/reprice')
export class AdminRepriceController {
  constructor(private readonly repricer: AdminRepriceService) {}

  @Get()
  form(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = pageQuery(prefill, query);
    const scope = { from: isoOrEmpty(q.from), to: isoOrEmpty(q.to), account_id: q.account_id };
    return renderPage(
      <Layout ctx={ctx} title="Reprice">
        <Notice done={query.done} messages={NOTICES} />
        <p class="help">
          Recomputes the cost of not-invoiced usage in [from, to) with the price book and account overrides as they are now. You see a dry run first; nothing
          changes until you apply it. Invoiced usage is never changed (a range holding any answers 409).
        </p>
        {query.done === 'applied' && (
          <p>
            <a href={withQuery('/app/admin/audit', { action: 'usage.reprice' })}>See the reprice entries in the audit log</a>
          </p>
        )}
        {canWrite(ctx) ? <RepriceForm ctx={ctx} scope={scope} /> : <p>Auditor sessions are read-only: repricing needs an admin.</p>}
      </Layout>,
    );
  }

  @Post()
  @HttpCode(200)
  async dryRun(@Req() req: PageRequest, @Body() body: unknown) {
    const ctx = pageContext(req);
    const b = parseInput(repriceBody, { ...formBody(body), dry_run: true }, 'body');
    const result = await repriceRange(this.repricer, b, actorOf(req));
    const scope: Scope = { from: b.from.toISOString(), to: b.to.toISOString(), account_id: b.account_id ?? undefined };
    const t = result.totals;
    return renderPage(
      <Layout ctx={ctx} title="Reprice: dry run">
        <p class="notice" role="status">
          Dry run: nothing has changed. {t.events_changed} of {t.events} not-invoiced events would change; cost{' '}
          <Money usd={t.cost_before_usd} exact /> → <Money usd={t.cost_after_usd} exact />.
        </p>
        <DataTable
          id="reprice-diff"
          caption={`Cost before and after, per account and model, ${scope.from} to ${scope.to} (UTC)${scope.account_id ? `, account ${scope.account_id}` : ', every account'}`}
          rows={result.by_account_model}
          empty="No not-invoiced usage in this range."
          columns={[
            { label: 'Account', cell: (g) => g.account_id },
            { label: 'Model', cell: (g) => g.model },
            { label: 'Events', numeric: true, cell: (g) => <Count n={g.events} /> },
            { label: 'Changing', numeric: true, cell: (g) => <Count n={g.events_changed} /> },
            { label: 'Cost before', numeric: true, cell: (g) => <Money usd={g.cost_before_usd} exact /> },
            { label: 'Cost after', numeric: true, cell: (g) => <Money usd={g.cost_after_usd} exact /> },
          ]}
          foot={
            <TotalFoot
              span={2}
              cells={[<Count n={t.events} />, <Count n={t.events_changed} />, <Money usd={t.cost_before_usd} exact />, <Money usd={t.cost_after_usd} exact />]}
            />
          }
        />
        <form method="post" action="/app/admin/reprice/apply" class="stack" id="apply-form">
          <CsrfField ctx={ctx} />
          <input type="hidden" name="from" value={scope.from} />
          <input type="hidden" name="to" value={scope.to} />
          {scope.account_id && <input type="hidden" name="account_id" value={scope.account_id} />}
          <p class="help">Applying recomputes with the price book as it is at that moment, in one transaction, and writes an audit entry.</p>
          <button type="submit">Apply this reprice</button>
        </form>
        <p>
          <a href={withQuery('/app/admin/reprice', { ...scope })}>Change the range</a>
        </p>
      </Layout>,
    );
  }

  @Post('apply')
  @HttpCode(303)
  async apply(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown) {
    const b = parseInput(repriceBody, { ...formBody(body), dry_run: false }, 'body');
    await repriceRange(this.repricer, b, actorOf(req));
    res.redirect(303, withQuery('/app/admin/reprice', { from: b.from.toISOString(), to: b.to.toISOString(), account_id: b.account_id ?? undefined, done: 'applied' }));
  }
}
