import { Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { percentage, usd } from '@tokenmeter/billing';
import type { ClaimedUsageRow, InvoiceLineRow, InvoiceRow } from '@tokenmeter/db';
import { InvoicesService } from '../../invoices/invoices.service';
import { toInvoiceUsageRows } from '@tokenmeter/invoicing';
import { scopeAccount } from '../../auth/principal';
import { invoiceJson, type InvoiceJson } from '../../invoices/invoice-json';
import { FreshnessService } from '../../usage/freshness';
import { eventsQuery, getUsageReceiptOrFail, listUsageReceipts, receiptQuery } from '../../usage/usage.controller';
import { instant, type ReceiptJson } from '../../usage/usage-json';
import { UsageService } from '../../usage/usage.service';
import { type PageRequest, pageContext, pageQuery, pathId } from '../page-context';
import { Count, DataTable, Facts, Freshness, Layout, Money, NextPage, type PageContext, renderPage, seesAdminPages, Time, TotalFoot } from '../ui';
import { WebPages } from '../web-session.guard';
import { AccountLink, Field, formQuery, KeepAccount, segment } from './account-pages';
import { allTokens, TOKEN_TYPES } from './usage-view';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The log's default range: the last 30 days, up to the end of the current hour. */
function defaultRange(now: Date): { from: string; to: string } {
  const to = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS;
  return { from: new Date(to - 30 * DAY_MS).toISOString(), to: new Date(to).toISOString() };
}


type Receipt = ReceiptJson;

/** The request log and one request's receipt, through the functions of /v1/usage/events and /v1/usage/events/{id}. */
@WebPages('account', 'admin')
@Controller('app/requests')
export class RequestsPagesController {
  constructor(
    private readonly usage: UsageService,
    private readonly freshness: FreshnessService,
    private readonly invoices: InvoicesService,
  ) {}

  /** Two reads: one page of events (limit + 1 rows, keyset) and complete_up_to. */
  @Get()
  async list(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    if (seesAdminPages(ctx.principal) && !query.account_id) return res.redirect(303, '/app/admin');
    const q = pageQuery(eventsQuery, { ...defaultRange(new Date()), ...formQuery(query) });
    const accountId = scopeAccount(ctx.principal, q.account_id);
    const { completeUpTo, result: page } = await this.freshness.withCompleteUpTo(() => listUsageReceipts(this.usage, ctx.principal, q));
    // The resolved range goes into every link, so "next page" keeps the same window.
    const keep = {
      from: instant(q.from),
      to: instant(q.to),
      model: q.model,
      api_key_id: q.api_key_id,
      request_id: q.request_id,
      limit: query.limit === undefined ? undefined : String(q.limit),
      account_id: q.account_id,
    };
    return renderPage(
      <Layout ctx={ctx} title="Requests">
        <p class="scope">
          Account <strong>{accountId}</strong>, events that occurred from <Time at={keep.from} /> to <Time at={keep.to} /> (to exclusive), newest first.
        </p>
        <Freshness completeUpTo={instant(completeUpTo)} />
        <form method="get" action="/app/requests" class="filters" aria-label="Request filters">
          <KeepAccount accountId={q.account_id} />
          <Field name="from" label="From (UTC)" value={keep.from} help="Inclusive, RFC 3339" />
          <Field name="to" label="To (UTC)" value={keep.to} help="Exclusive" />
          <Field name="model" label="Model" value={q.model} size={16} />
          <Field name="api_key_id" label="API key id" value={q.api_key_id} size={16} />
          <Field name="request_id" label="Request id" value={q.request_id} size={20} />
          <button type="submit">Show</button>
        </form>
        <DataTable
          id="requests-table"
          caption={`Requests, newest first (${page.data.length} on this page)`}
          empty="No requests match these filters in this range."
          rows={page.data}
          columns={[
            {
              label: 'Occurred (UTC)',
              cell: (r) => (
                <AccountLink path={`/app/requests/${segment(r.event_id)}`} accountId={q.account_id}>
                  <Time at={r.occurred_at} />
                </AccountLink>
              ),
            },
            { label: 'Event id', cell: (r) => <code>{r.event_id}</code> },
            { label: 'Model', cell: (r) => r.model },
            { label: 'API key', cell: (r) => r.api_key_id ?? '(no key)' },
            { label: 'Request id', cell: (r) => r.request_id ?? '' },
            ...TOKEN_TYPES.map(({ key, label }) => ({ label: `${label} tokens`, numeric: true, cell: (r: Receipt) => <Count n={r.tokens[`${key}_tokens`]} /> })),
            { label: 'Cost', numeric: true, cell: (r) => (r.costs ? <Money usd={r.costs.cost_usd} /> : 'unpriced') },
            { label: 'Invoiced', cell: (r) => (r.invoice_id ? 'yes' : 'not yet') },
          ]}
        />
        <NextPage path="/app/requests" query={keep} cursor={page.next_cursor} />
      </Layout>,
    );
  }

  /** At most four reads: the event (with its price version and override), complete_up_to, and its invoice with lines. */
  @Get(':event_id')
  async receipt(@Req() req: PageRequest, @Param('event_id') rawId: string, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const eventId = pathId('event_id', rawId);
    const q = pageQuery(receiptQuery, formQuery(query));
    // Another account's event and a missing one: the same page, word for word (the route's own 404).
    const receipt = await getUsageReceiptOrFail(this.usage, ctx.principal, eventId, q);
    let billed: { invoice: InvoiceRow; lines: InvoiceLineRow[] } | undefined;
    if (receipt.invoice_id) {
      billed = await this.invoices.getInvoiceWithLines(receipt.invoice_id, receipt.account_id);
    }
    const completeUpTo = await this.freshness.getCompleteUpTo();
    return renderPage(<ReceiptPage ctx={ctx} r={receipt} billed={billed} keepAccount={q.account_id} completeUpTo={instant(completeUpTo)} />);
  }
}

/**
 * The invoice lines an event was billed on: its usage lines are those of its (service period,
 * model, token type) at the rate the invoice printed for it, which toInvoiceUsageRows (the
 * invoicing code itself) works out from the event's price version and override; a discount or
 * price adjustment goes on that (service period, model)'s discount line.
 */
export function linesOfEvent(r: Receipt, lines: InvoiceLineRow[]): { byType: Map<string, InvoiceLineRow>; discount: InvoiceLineRow[] } {
  const byType = new Map<string, InvoiceLineRow>();
  const discount: InvoiceLineRow[] = [];
  if (!r.costs || !r.price_version) return { byType, discount };
  const servicePeriod = r.occurred_at.slice(0, 7);
  for (const row of toInvoiceUsageRows([claimedRowOf(r, servicePeriod)])) {
    const line = lines.find(
      (l) => l.servicePeriod === servicePeriod && l.model === r.model && l.tokenType === row.tokenType && usd(l.unitPricePerMTok).equals(row.ratePerMTok),
    );
    if (line) byType.set(row.tokenType, line);
  }
  const override = r.price_override;
  const percentKey = override?.kind === 'discount' && override.discount_percent !== null ? percentage(override.discount_percent).toFixed() : 'adjustment';
  const key = `${servicePeriod}:${r.model}:discount:${percentKey}`;
  discount.push(...lines.filter((l) => l.tokenType === 'discount' && l.lineKey === key));
  return { byType, discount };
}

function claimedRowOf(r: Receipt, servicePeriod: string): ClaimedUsageRow {
  const pv = r.price_version!;
  const o = r.price_override;
  const c = r.costs!;
  return {
    model: r.model,
    servicePeriod,
    priceOverrideKind: o?.kind ?? null,
    discountPercent: o?.discount_percent ?? null,
    tokens: {
      input: String(r.tokens.input_tokens),
      output: String(r.tokens.output_tokens),
      cacheRead: String(r.tokens.cache_read_tokens),
      cacheWrite: String(r.tokens.cache_write_tokens),
    },
    costUsd: { input: c.input_cost_usd, output: c.output_cost_usd, cacheRead: c.cache_read_cost_usd, cacheWrite: c.cache_write_cost_usd },
    listRates: { input: pv.input_per_mtok, output: pv.output_per_mtok, cacheRead: pv.cache_read_per_mtok, cacheWrite: pv.cache_write_per_mtok },
    cardRates:
      o?.kind === 'rate_card'
        ? { input: o.input_per_mtok, output: o.output_per_mtok, cacheRead: o.cache_read_per_mtok, cacheWrite: o.cache_write_per_mtok }
        : null,
  };
}

/** The rate each token type was charged at, as the invoice prints it (types with usage only). */
function chargedRates(r: Receipt): Map<string, string> {
  if (!r.costs || !r.price_version) return new Map();
  return new Map(toInvoiceUsageRows([claimedRowOf(r, r.occurred_at.slice(0, 7))]).map((row) => [row.tokenType, row.ratePerMTok.toFixed()]));
}

function Rate(props: { perMTok: string | null; fallback?: string }) {
  if (props.perMTok === null) return <span>{props.fallback ?? '—'}</span>;
  return (
    <>
      <data value={props.perMTok}>${props.perMTok}</data> per 1M
    </>
  );
}

function ReceiptPage(props: {
  ctx: PageContext;
  r: Receipt;
  billed?: { invoice: InvoiceRow; lines: InvoiceLineRow[] };
  keepAccount?: string;
  completeUpTo: string | null;
}) {
  const { r, billed } = props;
  const rates = chargedRates(r);
  const invoice: InvoiceJson | undefined = billed && invoiceJson(billed.invoice, billed.lines, { admin: false });
  const matched = billed ? linesOfEvent(r, billed.lines) : undefined;
  const facts: [string, preact.ComponentChildren][] = [
    ['Event id', <code>{r.event_id}</code>],
    ['Request id', r.request_id ?? '(none sent)'],
    ['Account', r.account_id],
    ['API key', r.api_key_id ?? '(no key)'],
    ['Model', r.model],
    ['Occurred at', <Time at={r.occurred_at} />],
    ['Received at', <Time at={r.received_at} />],
    ['Arrived by', r.source],
    ['Usage format', r.usage_format],
    ['Priced at', <Time at={r.priced_at} />],
    ['Flags', r.flags.length === 0 ? 'none' : r.flags.join(', ')],
  ];
  return (
    <Layout ctx={props.ctx} title={`Request receipt: ${r.event_id}`}>
      <Freshness completeUpTo={props.completeUpTo} />
      <p>
        <AccountLink path="/app/requests" accountId={props.keepAccount}>
          Back to the request log
        </AccountLink>
      </p>
      <Facts id="receipt-facts" facts={facts} />

      <section aria-labelledby="costs-h">
        <h2 id="costs-h">Tokens and cost</h2>
        {r.costs === null && (
          <p class="notice" role="status">
            Not priced: no price was in force for {r.model} at <Time at={r.occurred_at} />. It costs nothing until an admin adds a price and reprices it.
          </p>
        )}
        <DataTable
          id="receipt-costs"
          caption="Tokens per type, the rate the invoice prints for them, and the exact cost"
          rows={[...TOKEN_TYPES]}
          columns={[
            { label: 'Token type', cell: (t) => t.label },
            { label: 'Tokens', numeric: true, cell: (t) => <Count n={r.tokens[`${t.key}_tokens`]} /> },
            { label: 'Rate on the invoice', numeric: true, cell: (t) => <Rate perMTok={rates.get(t.key) ?? null} /> },
            { label: 'Cost (exact)', numeric: true, cell: (t) => (r.costs ? <Money usd={r.costs[`${t.key}_cost_usd`]} exact /> : 'unpriced') },
          ]}
          foot={<TotalFoot cells={[<Count n={allTokens(r.tokens)} />, null, r.costs ? <Money usd={r.costs.cost_usd} exact /> : 'unpriced']} />}
        />
        {r.costs !== null && r.price_override?.kind === 'discount' && (
          <p class="help" id="receipt-discount-note">
            The costs include the account's {r.price_override.discount_percent}% discount; the invoice prints the list rate and shows the discount as a separate
            line.
          </p>
        )}
        <p class="help">
          Of the output tokens, <Count n={r.tokens.reasoning_tokens} /> were reasoning tokens (charged as output, shown for information).
          The four types are disjoint: each token is charged once.
        </p>
      </section>

      <section aria-labelledby="price-h">
        <h2 id="price-h">Price in force at that instant</h2>
        {r.price_version === null ? (
          <p>No price version was in force.</p>
        ) : (
          <DataTable
            id="receipt-price"
            caption={`List price version ${r.price_version.id} for ${r.price_version.model}, effective from ${r.price_version.effective_from.slice(0, 16).replace('T', ' ')} UTC`}
            rows={[...TOKEN_TYPES]}
            columns={[
              { label: 'Token type', cell: (t) => t.label },
              {
                label: 'List rate',
                numeric: true,
                cell: (t) => <Rate perMTok={r.price_version![`${t.key}_per_mtok`]} fallback="the input rate" />,
              },
            ]}
          />
        )}
        <Override r={r} />
      </section>

      <section aria-labelledby="invoice-h">
        <h2 id="invoice-h">Invoice</h2>
        {invoice === undefined ? (
          <p>
            Not invoiced yet: it will be billed on the invoice of {r.occurred_at.slice(0, 7)}, or on the next open one as late
            usage if that month has closed.
          </p>
        ) : (
          <>
            <p id="receipt-invoice">
              Billed on invoice{' '}
              <AccountLink path={`/app/invoices/${segment(invoice.id)}`} accountId={props.keepAccount}>
                {invoice.period}
              </AccountLink>{' '}
              ({invoice.status}).
            </p>
            {matched && (matched.byType.size > 0 || matched.discount.length > 0) && (
              <DataTable
                id="receipt-lines"
                caption="The invoice lines this request is part of (each line sums many requests)"
                rows={[...matched.byType.values(), ...matched.discount]}
                columns={[
                  { label: 'Line', cell: (l) => l.description },
                  { label: 'Token type', cell: (l) => l.tokenType.replace('_', ' ') },
                  { label: 'Service period', cell: (l) => l.servicePeriod },
                  { label: 'Line amount (exact)', numeric: true, cell: (l) => <Money usd={usd(l.amountExactUsd).toFixed()} exact /> },
                ]}
              />
            )}
          </>
        )}
      </section>

      <section aria-labelledby="raw-h">
        <h2 id="raw-h">As the gateway sent it</h2>
        <h3>Usage ({r.usage_format})</h3>
        <pre>{JSON.stringify(r.usage_raw, null, 2)}</pre>
        <h3>Metadata</h3>
        <pre>{r.metadata === null ? 'none' : JSON.stringify(r.metadata, null, 2)}</pre>
      </section>
    </Layout>
  );
}

function Override(props: { r: Receipt }) {
  const o = props.r.price_override;
  if (o === null) return <p id="receipt-override">No account override: list prices applied.</p>;
  const window = (
    <>
      effective from <Time at={o.effective_from} />
      {o.effective_to ? (
        <>
          {' '}
          to <Time at={o.effective_to} />
        </>
      ) : (
        ', open-ended'
      )}
    </>
  );
  if (o.kind === 'discount') {
    return (
      <p id="receipt-override">
        Account discount <data value={o.discount_percent ?? ''}>{o.discount_percent}%</data> off the list price{o.model ? ` of ${o.model}` : ' on every model'} (override {o.id},{' '}
        {window}).
      </p>
    );
  }
  return (
    <>
      <p id="receipt-override">
        Account rate card {o.id} for {o.model ?? 'every model'}, {window}.
      </p>
      <DataTable
        id="receipt-rate-card"
        caption="Rate card rates (in place of the list rates)"
        rows={[...TOKEN_TYPES]}
        columns={[
          { label: 'Token type', cell: (t) => t.label },
          { label: 'Rate card rate', numeric: true, cell: (t) => <Rate perMTok={o[`${t.key}_per_mtok`]} fallback="the input rate" /> },
        ]}
      />
    </>
  );
}

