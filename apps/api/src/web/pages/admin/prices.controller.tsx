import { Body, Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { ModelsService } from '@tokenmeter/prices';
import { modelJson, type PriceVersionJson } from '../../../admin/admin-json';
import { addPriceVersion, priceBody } from '../../../admin/models.controller';
import { idFilter, parseInput } from '../../../common/validation';
import { type PageRequest, pageContext } from '../../page-context';
import { CsrfField, DataTable, Layout, renderPage, Time } from '../../ui';
import { WebPages } from '../../web-session.guard';
import { actorOf, canWrite, Field, formBody, INSTANT_HELP, Notice, Select } from './admin-ui';

const NOTICES = {
  price_version:
    'Price version added (audited as price_version.create). New usage is priced with it from the next ingest batch; usage already priced keeps its price until you reprice its range.',
  import:
    'Import applied (audited as model.create, model.update and price_version.create). New usage is priced with the new versions from the next ingest batch; usage already priced keeps its price until you reprice its range.',
};

const modelField = z.object({ model_id: idFilter });

function Rate(props: { usd: string | null; fallback?: string }) {
  return props.usd === null ? <>{props.fallback ?? ''}</> : <data value={props.usd}>{`$${props.usd}`}</data>;
}

/** The price book (GET /admin/models) and adding a price version (POST /admin/models/{id}/prices). */
@WebPages('admin')
@Controller('app/admin')
export class AdminPricesController {
  constructor(private readonly models: ModelsService) {}

  @Get('prices')
  async prices(@Req() req: PageRequest, @Query() query: Record<string, unknown>) {
    const ctx = pageContext(req);
    const models = (await this.models.listModels()).map(modelJson);
    const selected = typeof query.model === 'string' ? query.model : undefined;
    return renderPage(
      <Layout ctx={ctx} title="Price book">
        <Notice done={query.done} messages={NOTICES} />
        <p class="help" id="immutable">
          Price versions are immutable: a version is never edited or deleted. To correct a price, add a new version with a later effective instant. Rates are
          USD per million tokens, exact decimals.
        </p>
        {canWrite(ctx) && (
          <p>
            <a href="/app/admin/prices/import">Import prices from a LiteLLM or OpenRouter price map</a>
          </p>
        )}
        {canWrite(ctx) && (
          <section aria-labelledby="add-version">
            <h2 id="add-version">Add a price version</h2>
            <form method="post" action="/app/admin/prices" class="stack" id="price-version-form">
              <CsrfField ctx={ctx} />
              <Select id="pv-model" name="model_id" label="Model" value={selected} options={models.map((m) => [m.id, m.display_name ? `${m.id} (${m.display_name})` : m.id])} />
              <Field id="pv-from" name="effective_from" label="Effective from" required help={INSTANT_HELP} />
              <Field id="pv-input" name="input_per_mtok" label="Input, USD per million tokens" required inputMode="decimal" placeholder="2.50" />
              <Field id="pv-output" name="output_per_mtok" label="Output, USD per million tokens" required inputMode="decimal" />
              <Field id="pv-cache-read" name="cache_read_per_mtok" label="Cache read, USD per million tokens" required inputMode="decimal" />
              <Field id="pv-cache-write" name="cache_write_per_mtok" label="Cache write, USD per million tokens (optional)" help="Empty: cache writes cost the input rate." inputMode="decimal" />
              <button type="submit">Add price version</button>
            </form>
          </section>
        )}
        {models.map((m) => (
          <section aria-labelledby={`model-${m.id}`}>
            <h2 id={`model-${m.id}`}>{m.display_name ? `${m.id}: ${m.display_name}` : m.id}</h2>
            <p class="help">
              {m.provider ?? 'No provider'}; context window {m.context_window ?? 'not set'}; max output {m.max_output_tokens ?? 'not set'}.
            </p>
            <DataTable<PriceVersionJson>
              caption={`Price versions of ${m.id}, oldest first (USD per million tokens)`}
              rows={m.prices}
              empty="No price yet: its usage is unpriced."
              columns={[
                { label: 'Effective from (UTC)', cell: (v) => <Time at={v.effective_from} /> },
                { label: 'Input', numeric: true, cell: (v) => <Rate usd={v.input_per_mtok} /> },
                { label: 'Output', numeric: true, cell: (v) => <Rate usd={v.output_per_mtok} /> },
                { label: 'Cache read', numeric: true, cell: (v) => <Rate usd={v.cache_read_per_mtok} /> },
                { label: 'Cache write', numeric: true, cell: (v) => <Rate usd={v.cache_write_per_mtok} fallback="input rate" /> },
                { label: 'Version id', cell: (v) => <code>{v.id}</code> },
              ]}
            />
          </section>
        ))}
      </Layout>,
    );
  }

  @Post('prices')
  @HttpCode(303)
  async addVersion(@Req() req: PageRequest, @Res({ passthrough: true }) res: Response, @Body() body: unknown) {
    const form = formBody(body);
    const { model_id: modelId } = parseInput(modelField, form, 'body');
    const p = parseInput(priceBody, formBody(body, ['model_id']), 'body');
    await addPriceVersion(this.models, modelId, p, actorOf(req));
    res.redirect(303, `/app/admin/prices?done=price_version&model=${encodeURIComponent(modelId)}#model-${encodeURIComponent(modelId)}`);
  }
}
