import type { ComponentChildren, VNode } from 'preact';
import { render } from 'preact-render-to-string';
import { Decimal } from 'decimal.js';
import type { Principal } from '../auth/principal';

/**
 * The dashboard's building blocks. Pages are Preact components rendered to a string on the server
 * (preact-render-to-string escapes every text and attribute value, so an account named
 * `<img src=x onerror=alert(1)>` is text). No client script at all: filters are GET forms (the URL
 * is the state), actions are POST forms carrying the session's CSRF token, charts are inline SVG
 * with their data also in a <table>. The CSP (script-src 'self', no inline style) therefore costs
 * nothing, and every page works without JavaScript.
 */

export interface PageContext {
  principal: Principal;
  /** The session's CSRF token, carried by every form that changes something. */
  csrfToken: string;
  /** The path the page was asked for (navigation highlights it). */
  path: string;
}

/** A whole HTML document. */
export function renderPage(node: VNode): string {
  return `<!doctype html>\n${render(node)}`;
}

const ACCOUNT_NAV: [string, string][] = [
  ['/app', 'Overview'],
  ['/app/usage', 'Usage'],
  ['/app/requests', 'Requests'],
  ['/app/invoices', 'Invoices'],
];

const ADMIN_NAV: [string, string][] = [
  ['/app/admin', 'Accounts'],
  ['/app/admin/events', 'Events'],
  ['/app/admin/rejected', 'Rejected'],
  ['/app/admin/conflicts', 'Conflicts'],
  ['/app/admin/unpriced', 'Unpriced'],
  ['/app/admin/prices', 'Price book'],
  ['/app/admin/reprice', 'Reprice'],
  ['/app/admin/invoices', 'Invoices'],
  ['/app/admin/audit', 'Audit log'],
  ['/app/admin/keys', 'API keys'],
];

export function seesAdminPages(principal: Principal): boolean {
  return principal.role === 'admin' || principal.role === 'auditor';
}

/** The page frame: skip link, navigation, sign-out form, main landmark, the UTC note. */
export function Layout(props: { ctx: PageContext | null; title: string; head?: ComponentChildren; children: ComponentChildren }): VNode {
  const { ctx } = props;
  const nav = ctx === null ? [] : seesAdminPages(ctx.principal) ? ADMIN_NAV : ACCOUNT_NAV;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Tokenmeter`}</title>
        <link rel="stylesheet" href="/app/assets/app.css" />
        {props.head}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/app">
            Tokenmeter
          </a>
          {nav.length > 0 && (
            <nav aria-label="Main">
              <ul>
                {nav.map(([href, label]) => (
                  <li>
                    <a href={href} aria-current={isCurrent(ctx!.path, href) ? 'page' : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {ctx !== null && (
            <form method="post" action="/app/sign-out" class="sign-out">
              <CsrfField ctx={ctx} />
              <span class="who">{whoLabel(ctx.principal)}</span>
              <button type="submit">Sign out</button>
            </form>
          )}
        </header>
        <main id="main">
          <h1>{props.title}</h1>
          {props.children}
        </main>
        <footer>
          <p>All times are UTC.</p>
        </footer>
      </body>
    </html>
  );
}

function isCurrent(path: string, href: string): boolean {
  return href === '/app' || href === '/app/admin' ? path === href : path === href || path.startsWith(`${href}/`);
}

function whoLabel(p: Principal): string {
  if (p.role === 'account') return `Account ${p.accountId}`;
  return p.role === 'admin' ? 'Admin' : 'Auditor (read-only)';
}

export function CsrfField(props: { ctx: PageContext }): VNode {
  return <input type="hidden" name="_csrf" value={props.ctx.csrfToken} />;
}

/** Money as people read it (cents, thousands separators), with the exact API value in <data>. */
export function Money(props: { usd: string; exact?: boolean }): VNode {
  // Exact: the API's digits as they are, the sign in front of the "$" ("-$0.0202", not "$-0.0202").
  const exact = props.usd.startsWith('-') ? `-$${props.usd.slice(1)}` : `$${props.usd}`;
  return <data value={props.usd}>{props.exact ? exact : formatUsd(props.usd)}</data>;
}

/** "$1,234.57" (half up at the cent, for display only); below a cent but not zero: "<$0.01". */
export function formatUsd(usd: string): string {
  const d = new Decimal(usd);
  if (!d.isZero() && d.abs().lessThan('0.005')) return d.isNegative() ? '-<$0.01' : '<$0.01';
  const fixed = d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).abs().toFixed(2);
  const [whole, cents] = fixed.split('.');
  return `${d.isNegative() ? '-' : ''}$${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}

export function formatCount(n: number | string): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A count, readable, with the exact number in <data>. */
export function Count(props: { n: number | string }): VNode {
  return <data value={String(props.n)}>{formatCount(props.n)}</data>;
}

/** KPI tiles: a labelled value each, the number that matters first on a page. */
export function Tiles(props: { id: string; tiles: [string, ComponentChildren][] }): VNode {
  return (
    <dl class="tiles" id={props.id}>
      {props.tiles.map(([label, value]) => (
        <div class="tile">
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Labelled facts about one thing (an invoice, a receipt, an account), as a definition list. */
export function Facts(props: { id: string; facts: [string, ComponentChildren][] }): VNode {
  return (
    <dl class="facts" id={props.id}>
      {props.facts.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

/** An instant in UTC, machine-readable in datetime. */
export function Time(props: { at: string | null; date?: boolean }): VNode {
  if (props.at === null) return <span>never</span>;
  const text = props.date ? props.at.slice(0, 10) : `${props.at.slice(0, 16).replace('T', ' ')} UTC`;
  return <time datetime={props.at}>{text}</time>;
}

/** "Data complete up to T": usage after T may still be arriving. */
export function Freshness(props: { completeUpTo: string | null }): VNode {
  return (
    <p class="freshness" role="status">
      {props.completeUpTo === null ? (
        'Freshness unknown: no usage has come through the Kafka topic yet (usage sent over HTTP is shown as soon as it is stored).'
      ) : (
        <>
          Data complete up to <Time at={props.completeUpTo} />; later usage may still be arriving.
        </>
      )}
    </p>
  );
}

export interface Column<R> {
  label: string;
  /** Right-aligned numbers. */
  numeric?: boolean;
  cell: (row: R) => ComponentChildren;
}

/** An accessible data table: caption, scoped headers, an explicit empty state. */
export function DataTable<R>(props: { caption: string; columns: Column<R>[]; rows: R[]; foot?: ComponentChildren; empty?: string; id?: string }): VNode {
  return (
    <div class="table-wrap">
      <table id={props.id}>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col" class={c.numeric ? 'num' : undefined}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr>
              <td colSpan={props.columns.length}>{props.empty ?? 'Nothing in this range.'}</td>
            </tr>
          ) : (
            props.rows.map((row) => (
              <tr>
                {props.columns.map((c) => (
                  <td class={c.numeric ? 'num' : undefined}>{c.cell(row)}</td>
                ))}
              </tr>
            ))
          )}
        </tbody>
        {props.foot}
      </table>
    </div>
  );
}

/** A table's "Total" row: "Total" over the first `span` columns, then one numeric cell per value (null: an empty cell). */
export function TotalFoot(props: { span?: number; cells: ComponentChildren[] }): VNode {
  return (
    <tfoot>
      <tr>
        <th scope="row" colSpan={props.span}>
          Total
        </th>
        {props.cells.map((c) => (c === null ? <td /> : <td class="num">{c}</td>))}
      </tr>
    </tfoot>
  );
}

/**
 * A bar chart of one value per label, as inline SVG (no script, no external asset). The figure is
 * described by `title` for screen readers and hidden from them otherwise: the table next to it
 * carries the same data.
 */
export function BarChart(props: { title: string; bars: { label: string; value: string }[] }): VNode {
  const W = 720;
  const H = 180;
  const values = props.bars.map((b) => new Decimal(b.value));
  const max = Decimal.max(0, ...values);
  // At least 24 slots, so one day or hour is a bar, not a wall.
  const width = W / Math.max(props.bars.length, 24);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H + 20}`} role="img" aria-label={props.title} preserveAspectRatio="none">
        <title>{props.title}</title>
        <line x1="0" y1={H} x2={W} y2={H} class="axis" />
        {props.bars.map((b, i) => {
          const h = max.isZero() ? 0 : new Decimal(b.value).div(max).times(H).toNumber();
          return <rect x={i * width + 1} y={H - h} width={Math.max(width - 2, 1)} height={h} class="bar" />;
        })}
        {props.bars.length > 0 && (
          <>
            <text x="0" y={H + 15} class="tick">
              {props.bars[0].label}
            </text>
            <text x={W} y={H + 15} class="tick end">
              {props.bars[props.bars.length - 1].label}
            </text>
          </>
        )}
      </svg>
      <figcaption>{props.title} (the table below has the same data)</figcaption>
    </figure>
  );
}

/** Links to the next page of a keyset-paginated list, keeping every other filter. */
export function NextPage(props: { path: string; query: Record<string, string | undefined>; cursor: string | null }): VNode | null {
  if (!props.cursor) return null;
  return (
    <p class="pager">
      <a href={withQuery(props.path, { ...props.query, cursor: props.cursor })}>Next page</a>
    </p>
  );
}

/** `path?k=v&...` with empty values left out. */
export function withQuery(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export function ErrorPage(props: { ctx: PageContext | null; status: number; message: string }): VNode {
  const title = props.status === 404 ? 'Not found' : props.status === 403 ? 'Not allowed' : props.status >= 500 ? 'Something went wrong' : 'Cannot show this';
  return (
    <Layout ctx={props.ctx} title={title}>
      <p class="error" role="alert">
        {props.message}
      </p>
      <p>
        <a href="/app">Back to the dashboard</a>
      </p>
    </Layout>
  );
}
