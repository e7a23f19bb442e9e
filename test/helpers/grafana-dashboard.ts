/**
 * Checks for deploy/grafana/tokenmeter.json: that every query parses as PromQL and asks only for
 * series (and labels, and label values where it names one) that the services really export, and
 * that the dashboard imports anywhere (core panels only, one Prometheus datasource variable, no
 * links out). Each check returns the problems it found, so a test can show all of them at once and
 * a negative test can assert on a mutated copy.
 */
import { parsePromQL } from './promql';
import type { Exposition } from './prometheus-exposition';

export interface Panel {
  id?: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { refId: string; expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
  links?: unknown[];
}

export interface Dashboard {
  schemaVersion: number;
  panels: Panel[];
  links?: unknown[];
  templating?: { list: { name: string; type: string; query?: unknown }[] };
  __inputs?: unknown;
  __requires?: unknown;
}

export interface DashboardQuery {
  where: string;
  expr: string;
}

/** Labels Prometheus attaches to every scraped series itself (the target's), not the services. */
const TARGET_LABELS = new Set(['job', 'instance']);
/** Panel types built into Grafana: nothing to install. */
const CORE_PANELS = new Set(['row', 'timeseries', 'stat', 'gauge', 'bargauge', 'table', 'text', 'heatmap']);
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
/** Functions whose argument must be cumulative: on a gauge they return nonsense, not an error. */
const COUNTER_FUNCTIONS = new Set(['rate', 'irate', 'increase', 'resets']);

export function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  return allPanels(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" query ${t.refId}`, expr: t.expr ?? '' })),
  );
}

/** Every query parses and selects only exported series, labels and (for `=` matchers) label values. */
export function queryProblems(dashboard: Dashboard, exported: Exposition): string[] {
  const problems: string[] = [];
  const labelsOf = (metric: string) => exported.series.get(metric);
  for (const { where, expr } of dashboardQueries(dashboard)) {
    if (expr.trim() === '') {
      problems.push(`${where}: no expression`);
      continue;
    }
    const parsed = parsePromQL(expr);
    problems.push(...parsed.errors.map((e) => `${where}: ${e}`));
    for (const s of parsed.selectors) {
      if (s.metric === undefined) {
        problems.push(`${where}: a selector without a metric name`);
        continue;
      }
      const labels = labelsOf(s.metric);
      if (!labels) {
        problems.push(`${where}: ${s.metric} is not exported by the services`);
        continue;
      }
      for (const m of s.matchers) {
        if (TARGET_LABELS.has(m.label)) continue;
        const values = labels.get(m.label);
        if (!values) problems.push(`${where}: ${s.metric} has no label ${m.label}`);
        else if (m.op === '=' && !values.has(m.value)) {
          problems.push(`${where}: ${s.metric}{${m.label}="${m.value}"}: no such value among ${[...values].sort().join(', ')}`);
        }
      }
    }
    for (const call of parsed.calls) {
      for (const s of call.selectors) {
        const kind = s.metric === undefined ? undefined : exported.kinds.get(s.metric);
        if (kind === undefined) continue;
        if (COUNTER_FUNCTIONS.has(call.name) && kind !== 'counter' && kind !== 'bucket') problems.push(`${where}: ${call.name}() of ${s.metric}, a ${kind}`);
        if (call.name === 'histogram_quantile' && kind !== 'bucket') problems.push(`${where}: histogram_quantile() of ${s.metric}, not a histogram's _bucket series`);
      }
    }
    for (const g of parsed.groupings) {
      const known = g.selectors.flatMap((s) => labelsOf(s.metric ?? '') ?? []);
      // Only unknown metrics under it: reported above already.
      if (known.length === 0) continue;
      for (const label of g.labels) {
        if (TARGET_LABELS.has(label) || known.some((l) => l.has(label))) continue;
        problems.push(`${where}: grouping label ${label} is on none of ${g.selectors.map((s) => s.metric).join(', ')}`);
      }
    }
  }
  return problems;
}

/** Imports into a stock Grafana as it is: core panels, every query on the one Prometheus datasource variable, no links out. */
export function shapeProblems(dashboard: Dashboard): string[] {
  const problems: string[] = [];
  const variables = dashboard.templating?.list ?? [];
  const ds = variables.find((v) => v.name === 'datasource');
  if (!ds || ds.type !== 'datasource' || ds.query !== 'prometheus') problems.push('no datasource variable "datasource" of type prometheus');
  for (const v of variables) if (v !== ds) problems.push(`variable ${v.name}: only the datasource variable is expected`);
  if (dashboard.__inputs !== undefined || dashboard.__requires !== undefined) problems.push('__inputs/__requires: an export for one Grafana, not a portable dashboard');
  if ((dashboard.links ?? []).length > 0) problems.push('dashboard links: none expected');
  const ids = new Set<number>();
  for (const p of allPanels(dashboard.panels)) {
    if (!CORE_PANELS.has(p.type)) problems.push(`panel "${p.title}": type ${p.type} is not a core panel`);
    if (p.id === undefined || ids.has(p.id)) problems.push(`panel "${p.title}": missing or repeated id ${p.id}`);
    else ids.add(p.id);
    if ((p.links ?? []).length > 0) problems.push(`panel "${p.title}": links: none expected`);
    if (p.type === 'row') continue;
    if (!sameDatasource(p.datasource)) problems.push(`panel "${p.title}": datasource is not ${JSON.stringify(DATASOURCE)}`);
    if ((p.targets ?? []).length === 0) problems.push(`panel "${p.title}": no queries`);
    for (const t of p.targets ?? []) {
      if (!sameDatasource(t.datasource)) problems.push(`panel "${p.title}" query ${t.refId}: datasource is not ${JSON.stringify(DATASOURCE)}`);
    }
  }
  return problems;
}

function sameDatasource(ds: Panel['datasource']): boolean {
  return ds?.type === DATASOURCE.type && ds?.uid === DATASOURCE.uid;
}
