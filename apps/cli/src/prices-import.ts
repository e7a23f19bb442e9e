import { readFileSync } from 'node:fs';
import { type FieldChange, type ModelImport, parseModelMapping, PRICE_MAP_FORMATS, type PriceMapFormat } from '@tokenmeter/billing';
import { parseRfc3339Ms } from '@tokenmeter/billing/rfc3339';
import type { PriceImportRequest, PriceImportResult } from '@tokenmeter/prices';

/** A command-line mistake: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

export interface PricesImportArgs {
  file: string;
  format: string | undefined;
  effectiveAt: string | undefined;
  /** `--mapping <file.json>`: {"book_model_id": "key in the file" | null}. */
  mappingFile: string | undefined;
  /** `--model book_id=key` (repeatable); `book_id=` leaves the model out. */
  models: string[];
}

/** The command line as the service's request; the file is read as text (its numbers are read from it exactly). */
export function priceImportRequestOf(args: PricesImportArgs): PriceImportRequest {
  if (!PRICE_MAP_FORMATS.includes(args.format as PriceMapFormat)) throw new UsageError(`--format must be one of ${PRICE_MAP_FORMATS.join(', ')}`);
  let effectiveAt = new Date();
  if (args.effectiveAt !== undefined) {
    const ms = parseRfc3339Ms(args.effectiveAt);
    if (ms === null) throw new UsageError(`--effective-at must be an RFC 3339 date-time with an offset, e.g. 2026-11-01T00:00:00Z (got ${args.effectiveAt})`);
    effectiveAt = new Date(ms);
  }
  const models = new Map<string, string | null>();
  if (args.mappingFile !== undefined) {
    let mapping: unknown;
    try {
      mapping = JSON.parse(readText(args.mappingFile, '--mapping'));
    } catch (err) {
      throw err instanceof UsageError ? err : new UsageError(`--mapping ${args.mappingFile} is not JSON: ${(err as Error).message}`);
    }
    if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) throw new UsageError('--mapping must be a JSON object {"book_model_id": "key in the file" or null}');
    for (const [id, key] of Object.entries(mapping)) {
      if (key !== null && (typeof key !== 'string' || key === '')) throw new UsageError(`--mapping: ${id} must map to the model's key in the file, or null`);
      models.set(id, key);
    }
  }
  for (const [id, key] of parseModelMapping(args.models)) models.set(id, key);
  return { format: args.format as PriceMapFormat, content: readText(args.file, 'the price map'), effectiveAt, models };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** The diff, one line per changed field: `model field current -> proposed`, then what was written. */
export function describeImport(r: PriceImportResult): string {
  const { plan } = r;
  const out: string[] = [
    `${plan.format} price map: ${plan.entriesInFile} models in the file; new versions effective from ${plan.effectiveAt.toISOString()}.`,
    '',
  ];
  for (const m of plan.models) {
    out.push(`${m.modelId}${m.sourceKey && m.sourceKey !== m.modelId ? ` (from ${m.sourceKey})` : ''}: ${headline(m)}`);
    for (const c of m.changes) out.push(`  ${c.field.padEnd(20)} ${shown(c, c.current)} -> ${shown(c, c.proposed)}`);
    for (const note of m.notes) out.push(`  note: ${note}`);
  }
  const count = (s: ModelImport['status']) => plan.models.filter((m) => m.status === s).length;
  const versions = plan.models.filter((m) => m.version !== null).length;
  out.push(
    '',
    `${plan.models.length} models: ${count('new_model')} new, ${count('changed')} changed, ${count('unchanged')} unchanged, ${count('skipped')} skipped; ${versions} new price versions.`,
  );
  if (r.dryRun) {
    out.push('Dry run: nothing was written. Run again without --dry-run to apply.');
  } else {
    out.push(
      r.versions.length === 0 && count('changed') + count('new_model') === 0
        ? 'Nothing to change: the book already has these prices.'
        : `Applied in one transaction (audited as model.create, model.update, price_version.create). Price versions added: ${r.versions.map((v) => `${v.modelId} ${v.id}`).join(', ') || 'none'}.`,
    );
  }
  return `${out.join('\n')}\n`;
}

function headline(m: ModelImport): string {
  switch (m.status) {
    case 'new_model':
      return 'new model, with its first price version';
    case 'changed':
      return m.version ? 'new price version' : 'limits only (prices unchanged)';
    case 'unchanged':
      return 'unchanged';
    case 'skipped':
      return `skipped: ${m.reason}`;
  }
}

function shown(c: FieldChange, value: string | null): string {
  if (value !== null) return value;
  return c.field === 'cache_write_per_mtok' ? '(input rate)' : '(not set)';
}
