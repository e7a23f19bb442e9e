/**
 * PromQL as Prometheus's own UI reads it: @prometheus-io/lezer-promql is the grammar the
 * Prometheus web UI (and Grafana's PromQL editor, through codemirror-promql) parses with, kept in
 * the prometheus/prometheus repository. It is an error-tolerant parser, so a syntax error shows up
 * as an error node in the tree rather than an exception: `parsePromQL` reports those.
 */
import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';

export interface LabelMatcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface VectorSelector {
  /** The metric name, or undefined for a selector that names none (which the checks refuse). */
  metric: string | undefined;
  matchers: LabelMatcher[];
}

/** `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_left (...)`: labels and the selectors they apply to. */
export interface Grouping {
  labels: string[];
  selectors: VectorSelector[];
}

/** A function call and the selectors in its arguments. */
export interface FunctionCall {
  name: string;
  selectors: VectorSelector[];
}

export interface ParsedPromQL {
  selectors: VectorSelector[];
  groupings: Grouping[];
  calls: FunctionCall[];
  /** Syntax errors, as `at <offset>: <text around it>`. */
  errors: string[];
}

/**
 * Grafana's built-in interval variables, replaced by a duration before parsing (Grafana does the
 * same before it sends the query). Any other `$variable` is reported: this dashboard defines no
 * query variables, so one would be a typo or a leftover.
 */
const GRAFANA_INTERVALS = /\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}/g;

export function parsePromQL(expr: string): ParsedPromQL {
  const errors: string[] = [];
  const substituted = expr.replace(GRAFANA_INTERVALS, '5m');
  for (const m of substituted.matchAll(/\$\{?\w+/g)) errors.push(`at ${m.index}: unknown variable ${m[0]}`);
  // Not PromQL until Grafana has replaced it, and it could not: the parse would only add noise.
  if (errors.length > 0) return { selectors: [], groupings: [], calls: [], errors };
  const tree = parser.parse(substituted);
  const text = (n: SyntaxNode) => substituted.slice(n.from, n.to);

  const selectorOf = (node: SyntaxNode): VectorSelector => {
    const matchers: LabelMatcher[] = [];
    let metric = node.getChild('Identifier') ? text(node.getChild('Identifier')!) : undefined;
    for (const m of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      const [name, matchOp, literal] = [m.getChild('LabelName'), m.getChild('MatchOp'), m.getChild('StringLiteral')];
      // Part of it missing: a syntax error, reported where the tree has it.
      if (!name || !matchOp || !literal) continue;
      const label = text(name);
      const op = text(matchOp) as LabelMatcher['op'];
      const value = stringLiteral(text(literal));
      if (label === '__name__' && op === '=') metric = value;
      else matchers.push({ label, op, value });
    }
    return { metric, matchers };
  };

  const selectorsUnder = (node: SyntaxNode): VectorSelector[] => {
    const found: VectorSelector[] = [];
    const cursor = node.cursor();
    const end = node.to;
    do {
      if (cursor.from >= end) break;
      if (cursor.name === 'VectorSelector') found.push(selectorOf(cursor.node));
    } while (cursor.next());
    return found;
  };

  const selectors: VectorSelector[] = [];
  const groupings: Grouping[] = [];
  const calls: FunctionCall[] = [];
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) {
        errors.push(`at ${ref.from}: syntax error near ${JSON.stringify(substituted.slice(Math.max(0, ref.from - 20), ref.from + 20))}`);
        return;
      }
      if (ref.name === 'VectorSelector') selectors.push(selectorOf(ref.node));
      // Quoted (UTF-8) names, `{"my.metric"}` or `{"label"="v"}`: not used here; refused rather than half-understood.
      if (ref.name === 'QuotedLabelName') errors.push(`at ${ref.from}: quoted name ${text(ref.node)}`);
      if (ref.name === 'FunctionCall') {
        const body = ref.node.getChild('FunctionCallBody');
        calls.push({ name: text(ref.node.getChild('FunctionIdentifier')!), selectors: body ? selectorsUnder(body) : [] });
      }
      if (ref.name === 'GroupingLabels') {
        // The expression the clause belongs to: an aggregation (AggregateModifier's parent) or a
        // binary operation (MatchingModifierClause's parent); its selectors are where the labels come from.
        const owner = ref.node.parent?.parent;
        const labels = ref.node.getChildren('LabelName').map(text);
        if (owner) groupings.push({ labels, selectors: selectorsUnder(owner) });
      }
    },
  });
  return { selectors, groupings, calls, errors };
}

/** A PromQL string literal's value: double-quoted strings use Go's (here JSON's) escapes; single-quoted and raw ones are taken as written. */
function stringLiteral(literal: string): string {
  if (!literal.startsWith('"')) return literal.slice(1, -1);
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1); // a Go escape JSON lacks (\a, \x41): compared as written
  }
}
