import { ValidationError } from './errors';
import { Decimal } from './money';
import type { ModelLimits } from './pricing';
import type { ListRates, PriceMap, PriceMapFormat } from './price-maps';
import { ID_PATTERN } from './usage-schemas';

/**
 * What importing a price map would change in the price book, decided from plain data (the book
 * as it is and the parsed map), so a dry run and an apply are the same computation.
 *
 * - Which models: every model of the book, looked up in the map under its own id unless the
 *   mapping names its key there (or null: leave it out). A mapping entry for a model the book
 *   does not have proposes it as a new model. Nothing else in the map is imported: a LiteLLM map
 *   has thousands of models, and the book holds the ones this deployment bills.
 * - Prices: a new version at `effectiveAt` when any of the four rates differs from the model's
 *   latest version (by value; a null cache write differs from a number). Versions are
 *   immutable, so the instant must be after the latest version of every model that changes:
 *   an import never slips a version into the past of the book.
 * - Limits: the context window and max output from the map; a map without one keeps the book's.
 */
export interface BookModel extends ModelLimits {
  id: string;
  /** The model's latest price version, null when it has none. */
  latest: (ListRates & { effectiveFrom: Date }) | null;
}

export interface PriceImportOptions {
  effectiveAt: Date;
  /** Book model id -> the map's key for it; null leaves the model out. */
  models?: ReadonlyMap<string, string | null>;
}

export const IMPORT_FIELDS = ['input_per_mtok', 'output_per_mtok', 'cache_read_per_mtok', 'cache_write_per_mtok', 'context_window', 'max_output_tokens'] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

/** A field that changes, its values as text: rates in USD per million tokens, limits in tokens; null: not set. */
export interface FieldChange {
  field: ImportField;
  current: string | null;
  proposed: string | null;
}

export type ModelImportStatus = 'new_model' | 'changed' | 'unchanged' | 'skipped';

export interface ModelImport {
  modelId: string;
  /** The map's key the model was read from; null when the mapping left it out. */
  sourceKey: string | null;
  status: ModelImportStatus;
  changes: FieldChange[];
  /** The price version to add at effectiveAt; null: prices unchanged (or skipped). */
  version: ListRates | null;
  /** The limits to set; null: unchanged. */
  limits: ModelLimits | null;
  /** For a new model: the map's provider. */
  provider: string | null;
  /** Why a skipped model is not imported. */
  reason: string | null;
  notes: string[];
}

export interface PriceImportPlan {
  format: PriceMapFormat;
  effectiveAt: Date;
  models: ModelImport[];
  /** Models in the map (the book takes only those above). */
  entriesInFile: number;
}

const RATE_FIELDS: [ImportField, keyof ListRates][] = [
  ['input_per_mtok', 'inputPerMTok'],
  ['output_per_mtok', 'outputPerMTok'],
  ['cache_read_per_mtok', 'cacheReadPerMTok'],
  ['cache_write_per_mtok', 'cacheWritePerMTok'],
];

export function planPriceImport(map: PriceMap, book: readonly BookModel[], options: PriceImportOptions): PriceImportPlan {
  const mapping = options.models ?? new Map<string, string | null>();
  const inBook = new Set(book.map((m) => m.id));
  const absent = [...mapping].filter(([, key]) => key !== null && !map.entries.has(key)).map(([id, key]) => `${id}=${key}`);
  if (absent.length > 0) throw new ValidationError('models', `the file has no model ${absent.join(', ')} (a mapping names the file's key for a model)`);
  const newIds = [...mapping.keys()].filter((id) => !inBook.has(id)).sort();
  const badId = newIds.find((id) => !ID_PATTERN.test(id));
  if (badId !== undefined) throw new ValidationError('models', `${badId} cannot be a new model id: usage events name models with 1-128 characters from [A-Za-z0-9._:-]`);

  const models = [...book]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m) => planModel(map, m, mapping.has(m.id) ? mapping.get(m.id)! : m.id, mapping.has(m.id)));
  for (const id of newIds) models.push(planModel(map, { id, contextWindow: null, maxOutputTokens: null, latest: null }, mapping.get(id)!, true, true));

  const tooEarly = models.filter((m) => m.version !== null).flatMap((m) => {
    const latest = book.find((b) => b.id === m.modelId)?.latest;
    return latest && options.effectiveAt.getTime() <= latest.effectiveFrom.getTime() ? [`${m.modelId} (${latest.effectiveFrom.toISOString()})`] : [];
  });
  if (tooEarly.length > 0) {
    throw new ValidationError(
      'effective_at',
      `must be after the latest price version of every model it changes (versions are immutable; an import only adds versions after them): ${tooEarly.join(', ')}`,
    );
  }
  return { format: map.format, effectiveAt: options.effectiveAt, models, entriesInFile: map.entries.size };
}

function planModel(map: PriceMap, m: BookModel, key: string | null, mapped: boolean, isNew = false): ModelImport {
  const base = { modelId: m.id, sourceKey: key, changes: [], version: null, limits: null, provider: null, notes: [] };
  if (key === null) return { ...base, status: 'skipped', reason: 'left out by the mapping' };
  const entry = map.entries.get(key);
  if (!entry) return { ...base, status: 'skipped', reason: `the file has no model ${key}${mapped ? '' : ' (map the model to its key in the file)'}` };
  if (!entry.rates) return { ...base, status: 'skipped', reason: entry.problem, notes: entry.notes };

  const changes: FieldChange[] = [];
  const current = m.latest;
  for (const [field, name] of RATE_FIELDS) {
    const was = current ? current[name] : null;
    const now = entry.rates[name];
    if (!sameDecimal(was, now)) changes.push({ field, current: was === null ? null : normal(was), proposed: now === null ? null : normal(now) });
  }
  const version = current === null || changes.length > 0 ? entry.rates : null;

  const limits: ModelLimits = { contextWindow: entry.contextWindow ?? m.contextWindow, maxOutputTokens: entry.maxOutputTokens ?? m.maxOutputTokens };
  const limitChanges: FieldChange[] = [];
  if (limits.contextWindow !== m.contextWindow) limitChanges.push({ field: 'context_window', current: text(m.contextWindow), proposed: text(limits.contextWindow) });
  if (limits.maxOutputTokens !== m.maxOutputTokens) limitChanges.push({ field: 'max_output_tokens', current: text(m.maxOutputTokens), proposed: text(limits.maxOutputTokens) });

  const changed = version !== null || limitChanges.length > 0;
  return {
    ...base,
    status: isNew ? 'new_model' : changed ? 'changed' : 'unchanged',
    changes: [...changes, ...limitChanges],
    version,
    limits: limitChanges.length > 0 ? limits : null,
    provider: isNew ? entry.provider : null,
    reason: null,
    notes: entry.notes,
  };
}

function sameDecimal(a: string | null, b: string | null): boolean {
  return a === null || b === null ? a === b : new Decimal(a).eq(b);
}

/** "2.5000000000" (a NUMERIC(20, 10) as pg prints it) as "2.5". */
function normal(x: string): string {
  return new Decimal(x).toFixed();
}

function text(n: number | null): string | null {
  return n === null ? null : String(n);
}

/**
 * A mapping written as `book_model_id=key in the file` entries (the CLI's --model options, the
 * dashboard's mapping box, one per line); an empty key leaves the model out. Blank lines are ignored.
 */
export function parseModelMapping(lines: Iterable<string>): Map<string, string | null> {
  const mapping = new Map<string, string | null>();
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ValidationError('models', `"${line.slice(0, 80)}" is not book_model_id=key_in_file`);
    mapping.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim() || null);
  }
  return mapping;
}
