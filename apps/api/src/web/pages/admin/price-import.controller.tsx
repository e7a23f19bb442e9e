import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { type FieldChange, parseModelMapping, PRICE_MAP_FORMATS, priceMapSubset } from '@tokenmeter/billing';
import { ModelsService } from '@tokenmeter/prices';
import { priceImportBody, priceImportJson, priceImportRequest } from '../../../admin/price-import.controller';
import { parseInput } from '../../../common/validation';
import { type PageRequest, pageContext } from '../../page-context';
import { CsrfField, DataTable, Layout, type PageContext, renderPage } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { actorOf, canWrite, Field, formBody, Select } from './admin-ui';

type ImportJson = ReturnType<typeof priceImportJson>;
type ModelRow = ImportJson['models'][number];

const FORMAT_LABELS: Record<(typeof PRICE_MAP_FORMATS)[number], string> = {
  litellm: 'LiteLLM (model_prices_and_context_window.json)',
  openrouter: 'OpenRouter (GET /api/v1/models)',
};

const STATUS_LABELS: Record<ModelRow['status'], string> = {
  new_model: 'New model',
  changed: 'Changed',
  unchanged: 'Unchanged',
  skipped: 'Skipped',
};

/** The mapping box: one `book_model_id=key in the file` per line, as the API's `models` object. */
function mappingOf(text: unknown): Record<string, string | null> | undefined {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  return Object.fromEntries(parseModelMapping(text.split(/\r?\n/)));
}

function mappingText(models: Record<string, string | null> | undefined): string {
  return Object.entries(models ?? {})
    .map(([id, key]) => `${id}=${key ?? ''}`)
    .join('\n');
}

function Value(props: { change: FieldChange; value: string | null }) {
  if (props.value !== null) return <code>{props.value}</code>;
  return <>{props.change.field === 'cache_write_per_mtok' ? 'input rate' : 'not set'}</>;
}

function ImportForm(props: { ctx: PageContext }) {
  return (
    <form method="post" action="/app/admin/prices/import" enctype="multipart/form-data" class="stack" id="import-form">
      <CsrfField ctx={props.ctx} />
      <div class="field">
        <label for="import-file">Price map file (JSON, up to 8 MiB)</label>
        <input id="import-file" name="file" type="file" accept=".json,application/json" required />
      </div>
      <Select id="import-format" name="format" label="Format" options={PRICE_MAP_FORMATS.map((f) => [f, FORMAT_LABELS[f]])} />
      <Field
        id="import-effective-at"
        name="effective_at"
        label="Effective from (optional)"
        help="RFC 3339 with an offset, e.g. 2026-12-01T00:00:00Z. Empty: now. It must be after the latest price version of every model that changes."
      />
      <div class="field">
        <label for="import-models">Model mapping (optional)</label>
        <textarea id="import-models" name="models" rows={4} cols={60} aria-describedby="import-models-help" spellcheck={false} />
        <p id="import-models-help" class="help">
          One per line: book_model_id=key in the file, e.g. deepseek-r1=deepseek-reasoner. A model not listed is looked up under its own id; an
          empty key leaves it out; an id the book does not have is added as a new model.
        </p>
      </div>
      <button type="submit">Preview (dry run)</button>
    </form>
  );
}

/**
 * POST /admin/prices/import from the dashboard: upload a LiteLLM or OpenRouter price map, see the
 * dry run's diff, then apply. The apply form carries the entries the preview used (their numbers
 * as the file wrote them) and the previewed effective instant; applying plans again against the
 * book as it is then, in one transaction, exactly as the API does.
 */
@WebPages('admin')
@Controller('app/admin/prices/import')
export class AdminPriceImportController {
  constructor(private readonly models: ModelsService) {}

  @Get()
  form(@Req() req: PageRequest) {
    const ctx = pageContext(req);
    return renderPage(
      <Layout ctx={ctx} title="Import prices">
        <p class="help">
          Reads the per-token USD prices of LiteLLM&rsquo;s or OpenRouter&rsquo;s price map exactly (no rounding: a price the book cannot
          hold to 10 decimals per million tokens is skipped, with the reason) and proposes a new price version for each model of the book
          whose rates differ. You see a dry run first; nothing changes until you apply it.
        </p>
        {canWrite(ctx) ? <ImportForm ctx={ctx} /> : <p>Auditor sessions are read-only: importing prices needs an admin.</p>}
        <p>
          <a href="/app/admin/prices">Back to the price book</a>
        </p>
      </Layout>,
    );
  }

  @Post()
  @HttpCode(200)
  async dryRun(@Req() req: PageRequest & { file?: { buffer: Buffer } }, @Body() body: unknown) {
    const ctx = pageContext(req);
    const form = formBody(body, ['models']);
    const b = parseInput(priceImportBody, { ...form, content: req.file?.buffer.toString('utf8'), models: mappingOf((body as Record<string, unknown>)?.models), dry_run: true }, 'body');
    const result = await this.models.importPrices(priceImportRequest(b), true, actorOf(req));
    const json = priceImportJson(result);
    const changes = json.models.flatMap((m) => m.changes.map((change) => ({ model: m.model_id, change })));
    const applicable = json.models.some((m) => m.status === 'new_model' || m.status === 'changed');
    const count = (s: ModelRow['status']) => json.models.filter((m) => m.status === s).length;
    const keys = result.plan.models.flatMap((m) => (m.sourceKey === null ? [] : [m.sourceKey]));
    return renderPage(
      <Layout ctx={ctx} title="Import prices: dry run">
        <p class="notice" role="status">
          Dry run: nothing has changed. {json.entries_in_file} models in the file; of the book&rsquo;s: {count('changed')} changed, {count('new_model')} new,{' '}
          {count('unchanged')} unchanged, {count('skipped')} skipped. New versions would take effect from <code>{json.effective_at}</code>.
        </p>
        <DataTable
          id="import-diff"
          caption="What changes, per model and field (rates in USD per million tokens, limits in tokens)"
          rows={changes}
          empty="Nothing changes: the book already has these prices and limits."
          columns={[
            { label: 'Model', cell: (r) => r.model },
            { label: 'Field', cell: (r) => r.change.field },
            { label: 'Current', numeric: true, cell: (r) => <Value change={r.change} value={r.change.current} /> },
            { label: 'Proposed', numeric: true, cell: (r) => <Value change={r.change} value={r.change.proposed} /> },
          ]}
        />
        <DataTable<ModelRow>
          id="import-models"
          caption="Every model of the book, then the new ones"
          rows={json.models}
          columns={[
            { label: 'Model', cell: (m) => m.model_id },
            { label: 'Key in the file', cell: (m) => m.source_key ?? '(left out)' },
            { label: 'Status', cell: (m) => STATUS_LABELS[m.status] },
            { label: 'New price version', cell: (m) => (m.new_price_version ? 'yes' : 'no') },
            { label: 'Reason or notes', cell: (m) => [m.reason, ...m.notes].filter((x) => x !== null).join(' ') },
          ]}
        />
        {applicable ? (
          <form method="post" action="/app/admin/prices/import/apply" class="stack" id="apply-form">
            <CsrfField ctx={ctx} />
            <input type="hidden" name="format" value={json.format} />
            <input type="hidden" name="effective_at" value={json.effective_at} />
            <input type="hidden" name="models" value={mappingText(b.models)} />
            <input type="hidden" name="content" value={priceMapSubset(result.map, keys)} />
            <p class="help">
              Applying plans again against the price book as it is at that moment and writes everything in one transaction, audited (model.create, model.update,
              price_version.create).
            </p>
            <button type="submit">Apply this import</button>
          </form>
        ) : (
          <p>Nothing to apply.</p>
        )}
        <p>
          <a href="/app/admin/prices/import">Import another file</a>
        </p>
      </Layout>,
    );
  }

  @Post('apply')
  @HttpCode(303)
  async apply(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown) {
    const form = formBody(body, ['models']);
    const b = parseInput(priceImportBody, { ...form, models: mappingOf((body as Record<string, unknown>)?.models), dry_run: false }, 'body');
    await this.models.importPrices(priceImportRequest(b), false, actorOf(req));
    res.redirect(303, '/app/admin/prices?done=import');
  }
}
