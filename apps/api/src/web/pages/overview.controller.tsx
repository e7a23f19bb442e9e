import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Decimal } from '@tokenmeter/billing';
import { BudgetsService, CreditsService } from '@tokenmeter/limits';
import { AccountsService } from '../../admin/accounts.service';
import { creditBalancesJson, type CreditBalancesJson } from '../../credits/credits-json';
import { budgetJson, type BudgetJson } from '../../limits/budgets-json';
import { InvoicesService } from '../../invoices/invoices.service';
import { scopeAccount } from '../../auth/principal';
import { invoiceJson } from '../../invoices/invoice-json';
import type { TotalsJson } from '../../usage/usage-json';
import { UsageService } from '../../usage/usage.service';
import { accountQuery, type PageRequest, pageContext } from '../page-context';
import { BarChart, Count, DataTable, Freshness, Layout, Money, renderPage, seesAdminPages, Tiles, Time, TotalFoot, withQuery } from '../ui';
import { WebPages } from '../web-session.guard';
import { headlineTiles, tokenTiles } from './usage-view';

const HOUR_MS = 3_600_000;
const TOP_N = 5;

/** This month so far, in whole UTC hours: [first of the month, the end of the current hour). */
export function monthSoFar(now: Date): { from: Date; to: Date } {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const to = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS);
  return { from, to };
}

/** One bar per UTC day of the range (days without usage at zero), from the API's day buckets. */
function everyDay(range: { from: Date; to: Date }, buckets: { start: string; cost_usd: string }[]): { label: string; value: string }[] {
  const byDay = new Map(buckets.map((b) => [b.start.slice(0, 10), b.cost_usd]));
  const days: { label: string; value: string }[] = [];
  for (let t = range.from.getTime(); t < range.to.getTime(); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.push({ label: day, value: byDay.get(day) ?? '0' });
  }
  return days;
}

interface Ranked {
  label: string;
  costUsd: string;
  requests: number;
}

/** The top N by cost, then one "Other" row holding the exact rest, so the rows still sum to the total. */
export function topWithOther(rows: Ranked[], n = TOP_N): Ranked[] {
  if (rows.length <= n + 1) return rows;
  const rest = rows.slice(n);
  return [
    ...rows.slice(0, n),
    {
      label: `Other (${rest.length})`,
      costUsd: rest.reduce((sum, r) => sum.plus(r.costUsd), new Decimal(0)).toString(),
      requests: rest.reduce((sum, r) => sum + r.requests, 0),
    },
  ];
}

/** The account's home page: this month so far, from the same services as /v1/usage/summary and /timeseries. */
@WebPages('account', 'admin')
@Controller('app')
export class OverviewController {
  constructor(
    private readonly usage: UsageService,
    private readonly invoices: InvoicesService,
    private readonly accounts: AccountsService,
    private readonly budgets: BudgetsService,
    private readonly credits: CreditsService,
  ) {}

  @Get()
  async overview(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = accountQuery(query);
    // Admins and auditors have no account of their own: their home is the accounts list.
    if (seesAdminPages(ctx.principal) && !q.account_id) return res.redirect(303, '/app/admin');
    const accountId = scopeAccount(ctx.principal, q.account_id);
    const range = monthSoFar(new Date());
    // A bounded set of reads whatever the traffic: the account, the rollup summary (+ freshness), daily
    // buckets, the latest invoice, the budgets and the credits, each through the service its JSON route uses.
    const [account, summary, series, latest, budgets, credits] = await Promise.all([
      this.accounts.getAccount(accountId),
      this.usage.getSummary(accountId, range),
      this.usage.listBuckets(accountId, range, 'day', 'none'),
      this.invoices.listInvoices({ accountId, limit: 1 }),
      this.budgets.listBudgets(accountId).then((views) => views.map(budgetJson)),
      this.credits.balances(accountId).then(creditBalancesJson),
    ]);
    const t = summary.totals;
    const invoice = latest[0] ? invoiceJson(latest[0], null, { admin: false }) : null;
    const keep = { account_id: q.account_id };
    const byModel = topWithOther(summary.by_model.map((m) => ({ label: m.model, costUsd: m.cost_usd, requests: m.requests })));
    const byKey = topWithOther(summary.by_api_key.map((k) => ({ label: k.api_key_id ?? '(no key)', costUsd: k.cost_usd, requests: k.requests })));
    return renderPage(
      <Layout ctx={ctx} title={`This month: ${range.from.toISOString().slice(0, 7)}`}>
        <p class="scope">
          {account?.name ? (
            <>
              <strong id="account-name">{account.name}</strong> ({accountId})
            </>
          ) : (
            <strong>{accountId}</strong>
          )}
          , <Time at={summary.from} /> to <Time at={summary.to} /> (so far).
        </p>
        <Freshness completeUpTo={summary.complete_up_to} />
        <section aria-labelledby="kpis">
          <h2 id="kpis">Totals</h2>
          <TotalTiles t={t} />
        </section>
        <section aria-labelledby="daily">
          <h2 id="daily">Cost per day</h2>
          <BarChart title="Cost per UTC day this month" bars={everyDay(range, series.buckets)} />
          <DataTable
            id="daily-table"
            caption="Cost and requests per UTC day"
            rows={series.buckets}
            columns={[
              { label: 'Day (UTC)', cell: (b) => <Time at={b.start} date /> },
              { label: 'Requests', numeric: true, cell: (b) => <Count n={b.requests} /> },
              { label: 'Cost', numeric: true, cell: (b) => <Money usd={b.cost_usd} /> },
            ]}
          />
          <p>
            <a href={withQuery('/app/usage', { ...keep, from: summary.from, to: summary.to, granularity: 'day' })}>Explore usage</a>
          </p>
        </section>
        <section aria-labelledby="by-model">
          <h2 id="by-model">Cost by model</h2>
          <RankTable id="by-model-table" caption="Cost by model this month (top 5 and the rest)" rows={byModel} total={t} what="Model" />
        </section>
        <section aria-labelledby="by-key">
          <h2 id="by-key">Cost by API key</h2>
          <RankTable id="by-key-table" caption="Cost by API key this month (top 5 and the rest)" rows={byKey} total={t} what="API key" />
        </section>
        <BudgetsSection budgets={budgets} />
        <CreditsSection credits={credits} />
        <section aria-labelledby="invoice">
          <h2 id="invoice">Invoice</h2>
          {invoice === null ? (
            <p>No invoice yet: the month is invoiced after it ends.</p>
          ) : (
            <p>
              {invoice.status === 'draft' ? 'Current draft' : 'Last invoice'}: <a href={withQuery(`/app/invoices/${invoice.id}`, keep)}>{invoice.period}</a>,{' '}
              {invoice.status}, <Money usd={invoice.total_usd} />.
            </p>
          )}
        </section>
      </Layout>,
    );
  }
}

function TotalTiles(props: { t: TotalsJson }) {
  const { t } = props;
  return (
    <Tiles id="totals" tiles={[...headlineTiles(t), ...tokenTiles(t)]} />
  );
}

function RankTable(props: { id: string; caption: string; rows: Ranked[]; total: TotalsJson; what: string }) {
  return (
    <DataTable
      id={props.id}
      caption={props.caption}
      rows={props.rows}
      columns={[
        { label: props.what, cell: (r) => r.label },
        { label: 'Requests', numeric: true, cell: (r) => <Count n={r.requests} /> },
        { label: 'Cost', numeric: true, cell: (r) => <Money usd={r.costUsd} /> },
      ]}
      foot={<TotalFoot cells={[<Count n={props.total.requests} />, <Money usd={props.total.cost_usd} />]} />}
    />
  );
}

const STATE_LABEL: Record<BudgetJson['state'], string> = { ok: 'OK', soft: 'Over the limit', blocked: 'Blocked' };

/** The account's budgets as GET /v1/budgets answers them: the current window's exact spend against the limit. */
function BudgetsSection(props: { budgets: BudgetJson[] }) {
  if (props.budgets.length === 0) return null;
  return (
    <section aria-labelledby="budgets">
      <h2 id="budgets">Budgets</h2>
      <DataTable
        id="budgets-table"
        caption="Spend against each budget in its current window (UTC)"
        rows={props.budgets}
        columns={[
          { label: 'Scope', cell: (b) => [b.api_key_id ? `key ${b.api_key_id}` : 'account', b.model ? `, ${b.model}` : ''].join('') },
          { label: 'Window', cell: (b) => (b.resets_at ? <>{b.window}, resets <Time at={b.resets_at} /></> : 'total') },
          { label: 'Spend', numeric: true, cell: (b) => <Money usd={b.spend_usd} /> },
          { label: 'Limit', numeric: true, cell: (b) => <Money usd={b.limit_usd} /> },
          { label: 'Remaining', numeric: true, cell: (b) => <Money usd={b.remaining_usd} /> },
          { label: 'State', cell: (b) => `${STATE_LABEL[b.state]} (${b.enforce} limit)` },
        ]}
      />
    </section>
  );
}

/** The account's credits as GET /v1/credits answers them: what each grant has left, up to date with stored usage. */
function CreditsSection(props: { credits: CreditBalancesJson }) {
  const { credits } = props;
  if (credits.grants.length === 0) return null;
  return (
    <section aria-labelledby="credits">
      <h2 id="credits">Credits</h2>
      <p>
        Usable now: <Money usd={credits.totals.usable_usd} />, as of <Time at={credits.as_of} />.
      </p>
      <DataTable
        id="credits-table"
        caption="Credit grants, oldest first (usage burns them by priority, then soonest expiry)"
        rows={credits.grants}
        columns={[
          { label: 'Grant', cell: (g) => `${g.category} ${g.id}` },
          { label: 'State', cell: (g) => g.state },
          { label: 'Expires', cell: (g) => (g.expires_at ? <Time at={g.expires_at} /> : 'never') },
          { label: 'Granted', numeric: true, cell: (g) => <Money usd={g.amount_usd} /> },
          { label: 'Left', numeric: true, cell: (g) => <Money usd={g.available_usd} /> },
        ]}
      />
    </section>
  );
}
