/**
 * What a /metrics page offers to PromQL, read from Prometheus's text exposition format (0.0.4,
 * what prom-client serves): the series names a query can select and, for each, the label names
 * and values its samples carry.
 *
 * Series names are not the `# TYPE` names for every type: a histogram `x` is queried as
 * `x_bucket` (with `le`), `x_sum` and `x_count`, never as `x`; a summary `x` as `x` (with
 * `quantile`), `x_sum` and `x_count`. Counters are named with their `_total` in this format.
 */
export type SeriesLabels = Map<string, Set<string>>;

/**
 * What a series is, for the functions that care: `rate`, `increase` and the like want a
 * cumulative series (a counter, or a histogram's or summary's parts), `histogram_quantile` a
 * histogram's buckets.
 */
export type SeriesKind = 'counter' | 'gauge' | 'bucket' | 'quantile';

export interface Exposition {
  /** Series name -> label name -> the values seen. A series declared but without samples yet has no labels. */
  series: Map<string, SeriesLabels>;
  kinds: Map<string, SeriesKind>;
}

const PARTS: Record<string, [string, SeriesKind][]> = {
  counter: [['', 'counter']],
  histogram: [['_bucket', 'bucket'], ['_sum', 'counter'], ['_count', 'counter']],
  summary: [['', 'quantile'], ['_sum', 'counter'], ['_count', 'counter']],
};

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+(\s+\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

export function parseExposition(text: string): Exposition {
  const series = new Map<string, SeriesLabels>();
  const kinds = new Map<string, SeriesKind>();
  const labelsOf = (name: string) => series.get(name) ?? series.set(name, new Map()).get(name)!;
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/.exec(line);
    if (type) {
      for (const [suffix, kind] of PARTS[type[2]] ?? [['', 'gauge']]) {
        labelsOf(type[1] + suffix);
        kinds.set(type[1] + suffix, kind);
      }
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const labels = labelsOf(sample[1]);
    const body = sample[3] ?? '';
    LABEL_PAIR.lastIndex = 0;
    let read = 0;
    for (let m = LABEL_PAIR.exec(body); m; m = LABEL_PAIR.exec(body)) {
      const value = JSON.parse(`"${m[2]}"`) as string;
      (labels.get(m[1]) ?? labels.set(m[1], new Set()).get(m[1])!).add(value);
      read = LABEL_PAIR.lastIndex;
    }
    if (read !== body.length) throw new Error(`cannot read the labels of: ${line}`);
  }
  return { series, kinds };
}

/** Several targets' pages as one: what a Prometheus scraping all of them can be asked for. */
export function mergeExpositions(pages: Exposition[]): Exposition {
  const series = new Map<string, SeriesLabels>();
  const kinds = new Map<string, SeriesKind>();
  for (const page of pages) {
    for (const [name, kind] of page.kinds) kinds.set(name, kind);
    for (const [name, labels] of page.series) {
      const merged = series.get(name) ?? series.set(name, new Map()).get(name)!;
      for (const [label, values] of labels) merged.set(label, new Set([...(merged.get(label) ?? []), ...values]));
    }
  }
  return { series, kinds };
}
