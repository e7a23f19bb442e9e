import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { IMPORT_FIELDS, PRICE_MAP_FORMATS } from '@tokenmeter/billing';
import { ModelsService, type PriceImportRequest, type PriceImportResult } from '@tokenmeter/prices';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { dateTime, integerCount } from '../common/response-fields';
import { identifier, instant, ValidBody } from '../common/validation';
import { PriceVersionSchema, priceVersionJson } from './admin-json';

const sourceKey = z
  .string({ invalid_type_error: 'must be the key (LiteLLM) or id (OpenRouter) of a model in the file, or null' })
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .regex(/^[^\u0000]*$/, 'must not contain NUL (\\u0000) characters');

const body = z
  .object({
    format: z.enum(PRICE_MAP_FORMATS, { errorMap: () => ({ message: `must be one of ${PRICE_MAP_FORMATS.join(', ')}` }) }),
    content: z
      .string({ invalid_type_error: "must be the file's text as a JSON string" })
      .min(1, 'must not be empty')
      .describe(
        "The price map file's text, as one JSON string (not the file embedded as JSON: its numbers are read exactly from their text). LiteLLM: model_prices_and_context_window.json; OpenRouter: the body of GET /api/v1/models.",
      ),
    effective_at: instant.optional().describe('When the new price versions take effect (RFC 3339); default now. Must be after the latest version of every model whose prices change.'),
    models: z
      .record(identifier, sourceKey.nullable())
      .refine((m) => Object.keys(m).length <= 1000, 'must map at most 1000 models')
      .optional()
      .describe(
        "Book model id -> the model's key in the file; null leaves the model out. A book model not named here is looked up under its own id; an id the book does not have is proposed as a new model.",
      ),
    // Omitted means a dry run: applying must be asked for explicitly.
    dry_run: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
  })
  .strict();
type Body = z.output<typeof body>;

const FieldChangeSchema = z
  .object({
    field: z.enum(IMPORT_FIELDS),
    current: z.string().nullable().describe('Rates in USD per million tokens, limits in tokens; null: not set (a null cache write is charged at the input rate)'),
    proposed: z.string().nullable(),
  })
  .strict();

const ModelImportSchema = z
  .object({
    model_id: z.string(),
    source_key: z.string().nullable().describe("The file's key the model was read from; null when the mapping left it out"),
    status: z
      .enum(['new_model', 'changed', 'unchanged', 'skipped'])
      .describe('new_model: created with its first version; changed: a new price version and/or new limits; unchanged: nothing to add; skipped: see reason'),
    changes: z.array(FieldChangeSchema),
    new_price_version: z.boolean().describe('Whether the import adds a price version for it (at effective_at)'),
    reason: z.string().nullable().describe('Why a skipped model is not imported (not in the file, a price the book cannot hold exactly, ...)'),
    notes: z.array(z.string()).describe('What the book cannot represent and leaves out (tiered prices, a separate reasoning price)'),
  })
  .strict();

const PriceImportSchema = z
  .object({
    format: z.enum(PRICE_MAP_FORMATS),
    effective_at: dateTime,
    dry_run: z.boolean().describe('true: nothing was changed'),
    entries_in_file: integerCount.describe('Models in the file (only those of the book, or mapped, are imported)'),
    models: z.array(ModelImportSchema).describe('Every model of the book, then the new ones, by id'),
    price_versions: z.array(PriceVersionSchema).describe('The versions added (empty for a dry run)'),
  })
  .strict();
type PriceImportJson = z.input<typeof PriceImportSchema>;

/** The route's body as the service's request; the dashboard's import page builds its request with this too. */
export function priceImportRequest(b: Body): PriceImportRequest {
  return {
    format: b.format,
    content: b.content,
    effectiveAt: b.effective_at ?? new Date(),
    models: b.models === undefined ? undefined : new Map(Object.entries(b.models)),
  };
}

export function priceImportJson(r: PriceImportResult): PriceImportJson {
  return {
    format: r.plan.format,
    effective_at: r.plan.effectiveAt.toISOString(),
    dry_run: r.dryRun,
    entries_in_file: r.plan.entriesInFile,
    models: r.plan.models.map((m) => ({
      model_id: m.modelId,
      source_key: m.sourceKey,
      status: m.status,
      changes: m.changes,
      new_price_version: m.version !== null,
      reason: m.reason,
      notes: m.notes,
    })),
    price_versions: r.versions.map(priceVersionJson),
  };
}

@ApiTags('admin: price book')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/prices')
export class PriceImportController {
  constructor(private readonly models: ModelsService) {}

  @Post('import')
  @HttpCode(200)
  @ApiOperation({
    summary: "Import prices from LiteLLM's model_prices_and_context_window.json or OpenRouter's models list",
    description:
      'Per-token USD costs become per-million rates exactly (decimal arithmetic on the numbers as written; a value needing more than 10 decimals per million is not rounded: that model is skipped, with the reason). Each model of the book (and each mapped new one) gets a new price version at effective_at only when a rate differs from its latest version; context window and max output come along. dry_run (default true) changes nothing and answers the diff; otherwise everything is written in one transaction and audited (model.create, model.update, price_version.create). Body up to 8 MiB. Versions stay immutable: 400 if effective_at is not after the latest version of a model that changes.',
  })
  @ApiAnswer(PriceImportSchema)
  @errorResponses(...ADMIN_ERRORS, 409, 413)
  async import(@ValidBody(body) b: Body, @CurrentActor() actor: Actor): Promise<PriceImportJson> {
    return priceImportJson(await this.models.importPrices(priceImportRequest(b), b.dry_run, actor));
  }
}

// The dashboard's import page validates with this (and answers through priceImportRequest / priceImportJson).
export { body as priceImportBody };
