import type { ComponentChildren } from 'preact';
import { csvField } from '../../admin-usage/event-export';
import type { UsageTimeseriesJson } from '../../usage/usage-json';
import { type Column, Count, Money, Time } from '../ui';

/**
 * The usage page's time table, described once: the HTML table and the CSV export are both drawn
 * from these columns, so the download is exactly the view (same rows, same order, the exact
 * values the page carries in its <data> elements).
 */
export type Bucket = UsageTimeseriesJson['buckets'][number];
export type UsageGrouping = 'none' | 'model' | 'api_key' | 'token_type';

export interface ViewColumn {
  /** The CSV header (the API's field name). */
  header: string;
  /** The HTML column heading. */
  label: string;
  numeric?: boolean;
  /** The exact value, as the API answers it ('' for "no API key"). */
  value: (b: Bucket) => string;
  cell: (b: Bucket) => ComponentChildren;
}

/** A numeric column of one bucket field: the CSV carries the exact value, the table draws it. */
const numeric = (header: keyof Bucket, label: string, draw: (value: Bucket[keyof Bucket]) => ComponentChildren): ViewColumn => ({
  header,
  label,
  numeric: true,
  value: (b) => String(b[header]),
  cell: (b) => draw(b[header]),
});
const count = (header: keyof Bucket, label: string) => numeric(header, label, (n) => <Count n={n as number} />);
const money = (header: keyof Bucket, label: string) => numeric(header, label, (usd) => <Money usd={usd as string} />);

export const TOKEN_TYPES = [
  { key: 'input', label: 'Input' },
  { key: 'output', label: 'Output' },
  { key: 'cache_read', label: 'Cache read' },
  { key: 'cache_write', label: 'Cache write' },
] as const;

type TokenCounts = { input_tokens: number; output_tokens: number; cache_read_tokens: number; cache_write_tokens: number };

/** The tiles every totals view opens with: the cost, and the requests behind it. */
export function headlineTiles(t: { cost_usd: string; requests: number }): [string, ComponentChildren][] {
  return [
    ['Cost', <Money usd={t.cost_usd} />],
    ['Requests', <Count n={t.requests} />],
  ];
}

/** One tile per token type (the four disjoint types, as the columns name them). */
export function tokenTiles(t: TokenCounts): [string, ComponentChildren][] {
  return TOKEN_TYPES.map(({ key, label }) => [`${label} tokens`, <Count n={t[`${key}_tokens`]} />]);
}

/** All tokens of a row: the four disjoint types added up (reasoning tokens are part of output). */
export function allTokens(t: TokenCounts): number {
  return TOKEN_TYPES.reduce((n, { key }) => n + t[`${key}_tokens`], 0);
}

export function viewColumns(granularity: 'hour' | 'day', grouping: UsageGrouping): ViewColumn[] {
  const start: ViewColumn = {
    header: 'start',
    label: granularity === 'day' ? 'Day (UTC)' : 'Hour (UTC)',
    value: (b) => b.start,
    cell: (b) => <Time at={b.start} date={granularity === 'day'} />,
  };
  if (grouping === 'token_type') {
    return [
      start,
      ...TOKEN_TYPES.flatMap(({ key, label }) => [
        count(`${key}_tokens` as keyof Bucket, `${label} tokens`),
        money(`${key}_cost_usd` as keyof Bucket, `${label} cost`),
      ]),
      money('cost_usd', 'Cost'),
    ];
  }
  const group: ViewColumn[] =
    grouping === 'none'
      ? []
      : [
          {
            header: grouping === 'model' ? 'model' : 'api_key_id',
            label: grouping === 'model' ? 'Model' : 'API key',
            value: (b) => b.group ?? '',
            cell: (b) => b.group ?? '(no key)',
          },
        ];
  return [
    start,
    ...group,
    count('requests', 'Requests'),
    count('unpriced_requests', 'Unpriced'),
    count('input_tokens', 'Input tokens'),
    count('output_tokens', 'Output tokens'),
    count('cache_read_tokens', 'Cache read tokens'),
    count('cache_write_tokens', 'Cache write tokens'),
    money('cost_usd', 'Cost'),
  ];
}

export function tableColumns(columns: ViewColumn[]): Column<Bucket>[] {
  return columns.map((c) => ({ label: c.label, numeric: c.numeric, cell: c.cell }));
}

/** RFC 4180 CSV (CRLF, the export's field quoting) of the view's rows. */
export function usageCsv(columns: ViewColumn[], buckets: Bucket[]): string {
  const lines = [columns.map((c) => csvField(c.header)).join(',')];
  for (const b of buckets) lines.push(columns.map((c) => csvField(c.value(b))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A file name from the query: only [A-Za-z0-9._-], so the header needs no quoting rules. */
export function csvFileName(accountId: string, from: string, to: string, granularity: string, grouping: string): string {
  const compact = (iso: string) => iso.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return `tokenmeter-usage-${safe(accountId)}-${compact(from)}-${compact(to)}-${granularity}-${grouping}.csv`;
}
