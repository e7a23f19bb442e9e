import { Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { type InvoiceStatus, minorUnitsToUsdString } from '@tokenmeter/billing';
import { InvoicesService } from '../../invoices/invoices.service';
import { scopeAccount } from '../../auth/principal';
import { getInvoiceOrFail, INVOICE_LIST_LIMIT } from '../../invoices/invoices.controller';
import { invoiceJson, type InvoiceJson } from '../../invoices/invoice-json';
import { accountQuery, type PageRequest, pageContext, pathId } from '../page-context';
import { Count, DataTable, Facts, Layout, Money, type PageContext, renderPage, seesAdminPages, Time, TotalFoot } from '../ui';
import { WebPages } from '../web-session.guard';
import { AccountLink, formQuery, segment } from './account-pages';


/** What each status means to the customer. */
const STATUS_TEXT: Record<InvoiceStatus, string> = {
  draft: 'Draft: the month is not closed yet; its lines can still change.',
  finalizing: 'Being finalized: it is being sent to Stripe.',
  finalized: 'Finalized: sent to Stripe for payment.',
  sync_failed: 'Finalized here, not yet sent to Stripe (retried automatically).',
  paid: 'Paid.',
  void: 'Void: cancelled, nothing is owed on it.',
  uncollectible: 'Marked uncollectible.',
};

type Line = InvoiceJson['lines'][number];

function lineKind(invoicePeriod: string, l: Line): string {
  if (l.token_type === 'discount') return 'Discount';
  if (l.token_type === 'credit') return 'Credit';
  return l.service_period === invoicePeriod ? 'Usage' : `Late usage from ${l.service_period}`;
}

/** The account's invoices and one invoice, as /v1/invoices (the same limit, and the route's own getInvoiceOrFail). */
@WebPages('account', 'admin')
@Controller('app/invoices')
export class InvoicesPagesController {
  constructor(private readonly invoices: InvoicesService) {}

  /** One read: the invoices (at most 240, as the JSON list), without their lines. */
  @Get()
  async list(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const q = accountQuery(formQuery(query));
    if (seesAdminPages(ctx.principal) && !q.account_id) return res.redirect(303, '/app/admin/invoices');
    const accountId = scopeAccount(ctx.principal, q.account_id);
    const rows = await this.invoices.listInvoices({ accountId, limit: INVOICE_LIST_LIMIT });
    const invoices = rows.map((r) => invoiceJson(r, null, { admin: false }));
    return renderPage(
      <Layout ctx={ctx} title="Invoices">
        <p class="scope">
          Account <strong>{accountId}</strong>: one invoice per calendar month (UTC), newest first. Amounts billed are rounded to cents line by line;
          the exact amounts are on each invoice.
        </p>
        <DataTable
          id="invoices-table"
          caption="Invoices, newest period first"
          empty="No invoices yet: a month is invoiced after it ends."
          rows={invoices}
          columns={[
            {
              label: 'Period',
              cell: (i) => (
                <AccountLink path={`/app/invoices/${segment(i.id)}`} accountId={q.account_id}>
                  {i.period}
                </AccountLink>
              ),
            },
            { label: 'Status', cell: (i) => i.status },
            { label: 'Total billed', numeric: true, cell: (i) => <Money usd={i.total_usd} /> },
            { label: 'Exact total', numeric: true, cell: (i) => <Money usd={i.total_exact_usd} exact /> },
            { label: 'Finalized', cell: (i) => <Time at={i.finalized_at} date /> },
            { label: 'Paid', cell: (i) => <Time at={i.paid_at} date /> },
            { label: 'Stripe', cell: (i) => <StripeRef invoice={i} /> },
          ]}
        />
      </Layout>,
    );
  }

  /** Two reads: the invoice and its lines. Another account's invoice is the same 404 as a missing one. */
  @Get(':id')
  async invoice(@Req() req: PageRequest, @Param('id') rawId: string, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const id = pathId('id', rawId);
    const q = accountQuery(formQuery(query));
    // Account sessions: their own account. Admins: any invoice (as GET /v1/invoices/{id}), or
    // the account they named with ?account_id=.
    const accountId = seesAdminPages(ctx.principal) && !q.account_id ? undefined : scopeAccount(ctx.principal, q.account_id);
    const invoice = await getInvoiceOrFail(this.invoices, id, accountId, { admin: false });
    return renderPage(<InvoicePage ctx={ctx} invoice={invoice} keepAccount={q.account_id} />);
  }
}

function StripeRef(props: { invoice: { stripe_invoice_id: string | null; hosted_invoice_url: string | null } }) {
  const { stripe_invoice_id: stripeId, hosted_invoice_url: url } = props.invoice;
  if (url) {
    return (
      <a href={url} rel="noopener noreferrer">
        View and pay on Stripe<span class="visually-hidden"> (invoice {stripeId ?? ''}, opens Stripe's site)</span>
      </a>
    );
  }
  return stripeId ? <code>{stripeId}</code> : <span>not sent yet</span>;
}

function InvoicePage(props: { ctx: PageContext; invoice: InvoiceJson; keepAccount?: string }) {
  const i = props.invoice;
  const facts: [string, preact.ComponentChildren][] = [
    ['Invoice id', <code>{i.id}</code>],
    ['Account', i.account_id],
    ['Period', `${i.period} (UTC calendar month)`],
    ['Status', `${i.status}. ${STATUS_TEXT[i.status]}`],
    ['Currency', i.currency.toUpperCase()],
    ['Total billed', <Money usd={i.total_usd} exact />],
    ['Exact total', <Money usd={i.total_exact_usd} exact />],
    ['Stripe invoice', i.stripe_invoice_id ? <code>{i.stripe_invoice_id}</code> : 'not sent to Stripe yet'],
    ['Finalized', <Time at={i.finalized_at} />],
    ['Paid', <Time at={i.paid_at} />],
    ['Voided', <Time at={i.voided_at} />],
  ];
  const adjustments = i.lines.filter((l) => l.token_type === 'discount' || l.service_period !== i.period).length;
  return (
    <Layout ctx={props.ctx} title={`Invoice ${i.period}`}>
      <p>
        <AccountLink path="/app/invoices" accountId={props.keepAccount}>
          All invoices
        </AccountLink>
      </p>
      <Facts id="invoice-facts" facts={facts} />
      {i.hosted_invoice_url && (
        <p>
          <a href={i.hosted_invoice_url} rel="noopener noreferrer" id="hosted-invoice">
            View and pay this invoice on Stripe
          </a>{' '}
          (Stripe's site).
        </p>
      )}
      <section aria-labelledby="lines-h">
        <h2 id="lines-h">Lines</h2>
        <p class="help">
          One line per service month, model, token type and rate. {adjustments > 0 ? `${adjustments} of them are adjustments (discounts, or late usage from an earlier month). ` : ''}
          Each line's exact amount is rounded once, half up, to cents; the total billed is the sum of the rounded lines.
        </p>
        <DataTable
          id="invoice-lines"
          caption={`Lines of the ${i.period} invoice`}
          empty="No lines."
          rows={i.lines}
          columns={[
            { label: 'Kind', cell: (l) => lineKind(i.period, l) },
            { label: 'Service period', cell: (l) => l.service_period },
            { label: 'Description', cell: (l) => l.description },
            { label: 'Tokens', numeric: true, cell: (l) => <Count n={l.quantity} /> },
            {
              label: 'Rate per 1M',
              numeric: true,
              cell: (l) => (l.token_type === 'discount' || l.token_type === 'credit' ? '' : <data value={l.unit_price_per_mtok}>${l.unit_price_per_mtok}</data>),
            },
            { label: 'Amount (exact)', numeric: true, cell: (l) => <Money usd={l.amount_exact_usd} exact /> },
            { label: 'Billed', numeric: true, cell: (l) => <Money usd={minorUnitsToUsdString(String(l.amount_minor))} exact /> },
          ]}
          foot={<TotalFoot span={5} cells={[<Money usd={i.total_exact_usd} exact />, <Money usd={i.total_usd} exact />]} />}
        />
      </section>
    </Layout>
  );
}
