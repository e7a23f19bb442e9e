import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import type { AccountRecord } from '@tokenmeter/db';
import { ModelsService } from '@tokenmeter/prices';
import { accountTotalsQuery, listAccountTotals } from '../../../admin-usage/admin-usage.controller';
import { AdminUsageService } from '../../../admin-usage/admin-usage.service';
import { accountJson, priceOverrideJson, type PriceOverrideJson } from '../../../admin/admin-json';
import { AccountsService } from '../../../admin/accounts.service';
import { newOverrideOf, priceOverrideBody } from '../../../admin/price-overrides.controller';
import { PriceOverridesService } from '../../../admin/price-overrides.service';
import { parseInput, textFilter } from '../../../common/validation';
import { FreshnessService } from '../../../usage/freshness';
import { instant } from '../../../usage/usage-json';
import { type PageRequest, pageContext, pageQuery, pathId } from '../../page-context';
import { Count, CsrfField, DataTable, Facts, Freshness, Layout, Money, NextPage, type PageContext, renderPage, Time, withQuery } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { WebSessionsService } from '../../web-sessions.service';
import { monthSoFar } from '../overview.controller';
import { actorOf, canWrite, Field, FilterForm, formBody, INSTANT_HELP, isoOrEmpty, Notice, Select } from './admin-ui';

const SEARCH_LIMIT = 50;
const searchQuery = z.object({ q: textFilter(128).optional() });

const NOTICES = {
  override: 'Override added (audited as price_override.create). It prices new usage from the next ingest batch; reprice a range to apply it to usage already priced.',
};

/** The pages of one account as that account sees them (admin sessions pass account_id). */
export function accountPages(accountId: string): [string, string][] {
  const q = { account_id: accountId };
  return [
    [withQuery('/app', q), 'Overview'],
    [withQuery('/app/usage', q), 'Usage'],
    [withQuery('/app/requests', q), 'Requests'],
    [withQuery('/app/invoices', q), 'Invoices'],
  ];
}

/** Accounts ranked by spend (from the rollups, as GET /admin/usage/accounts), account search, one account's page. */
@WebPages('admin')
@Controller('app/admin')
export class AdminAccountsController {
  constructor(
    private readonly admin: AdminUsageService,
    private readonly accounts: AccountsService,
    private readonly overrides: PriceOverridesService,
    private readonly models: ModelsService,
    private readonly sessions: WebSessionsService,
    private readonly freshness: FreshnessService,
  ) {}

  @Get()
  async list(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const { q: search } = pageQuery(searchQuery, query);
    const month = monthSoFar(new Date());
    // The range defaults to this month so far; given, it is the API's rule (whole UTC hours).
    const q = pageQuery(accountTotalsQuery, { from: isoOrEmpty(month.from), to: isoOrEmpty(month.to), ...query });
    // Four reads whatever the range: the ranking (one rollup query), names for its rows, freshness, the search.
    const {
      completeUpTo,
      result: [page, found],
    } = await this.freshness.withCompleteUpTo(() =>
      Promise.all([listAccountTotals(this.admin, q), search ? this.accounts.searchAccounts(search, SEARCH_LIMIT) : Promise.resolve(undefined)]),
    );
    const names = new Map((await this.accounts.getAccountsByIds(page.data.map((a) => a.account_id))).map((a) => [a.id, a.name]));
    const keep = { from: page.from, to: page.to, q: search };
    return renderPage(
      <Layout ctx={ctx} title="Accounts">
        <form method="get" action="/app/admin" class="filters" role="search" aria-label="Find an account">
          <input type="hidden" name="from" value={page.from} />
          <input type="hidden" name="to" value={page.to} />
          <div class="field">
            <label for="q">Account id (prefix) or name</label>
            <input id="q" name="q" type="search" value={search ?? ''} autocomplete="off" spellcheck={false} />
          </div>
          <button type="submit">Search</button>
        </form>
        {found && (
          <section aria-labelledby="found">
            <h2 id="found">Accounts matching “{search}”</h2>
            <AccountList id="search-results" accounts={found} caption={`Accounts whose id starts with or whose name contains “${search}” (at most ${SEARCH_LIMIT})`} />
          </section>
        )}
        <section aria-labelledby="ranking">
          <h2 id="ranking">Ranked by spend</h2>
          <FilterForm action="/app/admin" label="Range">
            <Field id="from" name="from" label="From (UTC, inclusive)" value={page.from} help="A whole UTC hour, e.g. 2026-11-01T00:00:00Z." required />
            <Field id="to" name="to" label="To (UTC, exclusive)" value={page.to} required />
            {search && <input type="hidden" name="q" value={search} />}
          </FilterForm>
          <p class="scope">
            <Time at={page.from} /> to <Time at={page.to} />, from the hourly rollups.
          </p>
          <Freshness completeUpTo={instant(completeUpTo)} />
          <DataTable
            id="ranking-table"
            caption="Accounts by cost in the range, largest first"
            rows={page.data}
            empty="No usage in this range."
            columns={[
              { label: 'Account', cell: (a) => <a href={`/app/admin/accounts/${encodeURIComponent(a.account_id)}`}>{a.account_id}</a> },
              { label: 'Name', cell: (a) => names.get(a.account_id) ?? '' },
              { label: 'Requests', numeric: true, cell: (a) => <Count n={a.requests} /> },
              { label: 'Unpriced', numeric: true, cell: (a) => <Count n={a.unpriced_requests} /> },
              { label: 'Input tokens', numeric: true, cell: (a) => <Count n={a.input_tokens} /> },
              { label: 'Output tokens', numeric: true, cell: (a) => <Count n={a.output_tokens} /> },
              { label: 'Cost', numeric: true, cell: (a) => <Money usd={a.cost_usd} /> },
              { label: 'As the account sees it', cell: (a) => <a href={withQuery('/app', { account_id: a.account_id })}>Dashboard</a> },
            ]}
          />
          <NextPage path="/app/admin" query={keep} cursor={page.next_cursor} />
        </section>
      </Layout>,
    );
  }

  @Get('accounts/:id')
  async account(@Req() req: PageRequest, @Param('id') rawId: string, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const id = pathId('id', rawId);
    const account = await this.accounts.getAccountOrFail(id);
    const [overrides, models] = await Promise.all([this.overrides.listPriceOverrides(id), canWrite(ctx) ? this.models.listModels() : Promise.resolve([])]);
    const a = accountJson(account);
    return renderPage(
      <Layout ctx={ctx} title={`Account ${a.id}`}>
        <Notice done={query.done} messages={NOTICES} />
        <Facts
          id="account-facts"
          facts={[
            ['Id', a.id],
            ['Name', a.name ?? '(not named yet)'],
            ['Email', a.email ?? '(none)'],
            ['Created', <Time at={a.created_at} />],
          ]}
        />
        <section aria-labelledby="as-account">
          <h2 id="as-account">Its pages, as the account sees them</h2>
          <ul>
            {accountPages(a.id).map(([href, label]) => (
              <li>
                <a href={href}>{label}</a>
              </li>
            ))}
            <li>
              <a href={withQuery('/app/admin/events', { account_id: a.id })}>Its events (admin search)</a>
            </li>
            <li>
              <a href={withQuery('/app/admin/keys', { account_id: a.id })}>Its API keys</a>
            </li>
          </ul>
        </section>
        <section aria-labelledby="overrides">
          <h2 id="overrides">Price overrides</h2>
          <OverrideTable overrides={overrides.map(priceOverrideJson)} />
          {canWrite(ctx) && <OverrideForms ctx={ctx} accountId={a.id} models={models.map((m) => m.id)} />}
        </section>
        {canWrite(ctx) && (
          <section aria-labelledby="link">
            <h2 id="link">Dashboard link</h2>
            <form method="post" action={`/app/admin/accounts/${encodeURIComponent(a.id)}/dashboard-links`} class="stack">
              <CsrfField ctx={ctx} />
              <p class="help">A one-time link that signs a browser in as this account (a customer-portal link). It is shown once; opening it a second time fails.</p>
              <button type="submit">Create a dashboard link</button>
            </form>
          </section>
        )}
      </Layout>,
    );
  }

  /** POST /admin/accounts/{id}/price-overrides, from the page: the same schema, mapping and service call. */
  @Post('accounts/:id/price-overrides')
  @HttpCode(303)
  async addOverride(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Param('id') rawId: string, @Body() body: unknown) {
    const id = pathId('id', rawId);
    const b = parseInput(priceOverrideBody, formBody(body), 'body');
    await this.overrides.createPriceOverride(newOverrideOf(id, b), actorOf(req));
    res.redirect(303, `/app/admin/accounts/${encodeURIComponent(id)}?done=override#overrides`);
  }

  /**
   * POST /admin/accounts/{id}/dashboard-links, from the page. The URL is shown in this answer and
   * nowhere else (not in a redirect's query, which would land in history and logs).
   */
  @Post('accounts/:id/dashboard-links')
  async createLink(@Req() req: PageRequest, @Param('id') rawId: string) {
    const ctx = pageContext(req);
    const id = pathId('id', rawId);
    const link = await this.sessions.createDashboardLink(id, actorOf(req));
    return renderPage(
      <Layout ctx={ctx} title={`Dashboard link for ${id}`}>
        <p class="notice" role="status">
          Link created (audited as dashboard_link.create). Copy it now: it is not shown again, works once, and expires at{' '}
          <Time at={link.expiresAt.toISOString()} />.
        </p>
        <label for="link-url">One-time dashboard link</label>
        <input id="link-url" class="secret" type="text" readOnly value={link.url} spellcheck={false} />
        <p>
          <a href={`/app/admin/accounts/${encodeURIComponent(id)}`}>Back to the account</a>
        </p>
      </Layout>,
    );
  }
}

function AccountList(props: { id: string; accounts: AccountRecord[]; caption: string }) {
  return (
    <DataTable
      id={props.id}
      caption={props.caption}
      rows={props.accounts}
      empty="No account matches."
      columns={[
        { label: 'Account', cell: (a) => <a href={`/app/admin/accounts/${encodeURIComponent(a.id)}`}>{a.id}</a> },
        { label: 'Name', cell: (a) => a.name ?? '' },
        { label: 'Email', cell: (a) => a.email ?? '' },
        { label: 'As the account sees it', cell: (a) => <a href={withQuery('/app', { account_id: a.id })}>Dashboard</a> },
      ]}
    />
  );
}

function OverrideTable(props: { overrides: PriceOverrideJson[] }) {
  const rate = (x: string | null) => (x === null ? '' : <data value={x}>{`$${x}`}</data>);
  return (
    <DataTable
      id="overrides-table"
      caption="Rate cards and discounts, by effective from (USD per million tokens)"
      rows={props.overrides}
      empty="No overrides: list prices apply."
      columns={[
        { label: 'Id', cell: (o) => o.id },
        { label: 'Kind', cell: (o) => (o.kind === 'rate_card' ? 'Rate card' : 'Discount') },
        { label: 'Model', cell: (o) => o.model_id ?? 'all models' },
        { label: 'Discount', numeric: true, cell: (o) => (o.discount_percent === null ? '' : <data value={o.discount_percent}>{`${o.discount_percent}%`}</data>) },
        { label: 'Input', numeric: true, cell: (o) => rate(o.input_per_mtok) },
        { label: 'Output', numeric: true, cell: (o) => rate(o.output_per_mtok) },
        { label: 'Cache read', numeric: true, cell: (o) => rate(o.cache_read_per_mtok) },
        { label: 'Cache write', numeric: true, cell: (o) => (o.kind === 'rate_card' && o.cache_write_per_mtok === null ? 'input rate' : rate(o.cache_write_per_mtok)) },
        { label: 'From (UTC)', cell: (o) => <Time at={o.effective_from} /> },
        { label: 'To (UTC, exclusive)', cell: (o) => (o.effective_to === null ? 'open-ended' : <Time at={o.effective_to} />) },
      ]}
    />
  );
}

function OverrideForms(props: { ctx: PageContext; accountId: string; models: string[] }) {
  const action = `/app/admin/accounts/${encodeURIComponent(props.accountId)}/price-overrides`;
  const modelOptions = props.models.map((m): [string, string] => [m, m]);
  return (
    <>
      <h3>Add a rate card</h3>
      <form method="post" action={action} class="stack" id="rate-card-form">
        <CsrfField ctx={props.ctx} />
        <input type="hidden" name="kind" value="rate_card" />
        <Select id="rc-model" name="model_id" label="Model" options={modelOptions} />
        <Field id="rc-input" name="input_per_mtok" label="Input, USD per million tokens" required inputMode="decimal" placeholder="2.50" />
        <Field id="rc-output" name="output_per_mtok" label="Output, USD per million tokens" required inputMode="decimal" />
        <Field id="rc-cache-read" name="cache_read_per_mtok" label="Cache read, USD per million tokens" required inputMode="decimal" />
        <Field id="rc-cache-write" name="cache_write_per_mtok" label="Cache write, USD per million tokens (optional)" help="Empty: cache writes cost the input rate." inputMode="decimal" />
        <Field id="rc-from" name="effective_from" label="Effective from" required help={INSTANT_HELP} />
        <Field id="rc-to" name="effective_to" label="Effective to (exclusive, optional)" help="Empty: open-ended." />
        <button type="submit">Add rate card</button>
      </form>
      <h3>Add a discount</h3>
      <form method="post" action={action} class="stack" id="discount-form">
        <CsrfField ctx={props.ctx} />
        <input type="hidden" name="kind" value="discount" />
        <Select id="d-model" name="model_id" label="Model" options={[['', 'All models'], ...modelOptions]} />
        <Field id="d-percent" name="discount_percent" label="Discount, percent" required inputMode="decimal" placeholder="12.5" help="In (0, 100], at most 4 decimals." />
        <Field id="d-from" name="effective_from" label="Effective from" required help={INSTANT_HELP} />
        <Field id="d-to" name="effective_to" label="Effective to (exclusive, optional)" help="Empty: open-ended." />
        <button type="submit">Add discount</button>
      </form>
    </>
  );
}
