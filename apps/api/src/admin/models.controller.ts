import { Controller, Get, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ModelsService } from '@tokenmeter/prices';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { freeText, identifier, idFilter, instant, rateString, ValidBody, ValidParam } from '../common/validation';
import { ModelListSchema, ModelSchema, modelJson, type PriceVersionJson, PriceVersionSchema, priceVersionJson } from './admin-json';

const positiveInt = z.number({ invalid_type_error: 'must be an integer' }).int('must be an integer').min(1, 'must be at least 1').max(1_000_000_000);
const text = freeText(200);

const modelBody = z
  .object({
    id: identifier,
    display_name: text.nullish(),
    provider: text.nullish(),
    context_window: positiveInt.nullish(),
    max_output_tokens: positiveInt.nullish(),
  })
  .strict();

const priceBody = z
  .object({
    effective_from: instant,
    input_per_mtok: rateString,
    output_per_mtok: rateString,
    cache_read_per_mtok: rateString,
    cache_write_per_mtok: rateString.nullish(),
  })
  .strict();

/** A price version from the route's body (the dashboard's price book form posts through this too). */
export async function addPriceVersion(models: ModelsService, modelId: string, p: z.output<typeof priceBody>, actor: Actor): Promise<PriceVersionJson> {
  const version = await models.createPriceVersion(
    {
      modelId,
      effectiveFrom: p.effective_from,
      inputPerMTok: p.input_per_mtok,
      outputPerMTok: p.output_per_mtok,
      cacheReadPerMTok: p.cache_read_per_mtok,
      cacheWritePerMTok: p.cache_write_per_mtok ?? null,
    },
    actor,
  );
  return priceVersionJson(version);
}

@ApiTags('admin: price book')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/models')
export class ModelsController {
  constructor(private readonly models: ModelsService) {}

  @Post()
  @ApiOperation({ summary: 'Add a model (409 if it exists)' })
  @ApiAnswer(ModelSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 409)
  async create(@ValidBody(modelBody) m: z.output<typeof modelBody>, @CurrentActor() actor: Actor) {
    const created = await this.models.createModel(
      {
        id: m.id,
        displayName: m.display_name ?? null,
        provider: m.provider ?? null,
        contextWindow: m.context_window ?? null,
        maxOutputTokens: m.max_output_tokens ?? null,
      },
      actor,
    );
    return modelJson(created);
  }

  @Get()
  @ApiOperation({ summary: 'All models with their price versions (oldest first)' })
  @ApiAnswer(ModelListSchema)
  @errorResponses(...ADMIN_ERRORS)
  async list() {
    return { data: (await this.models.listModels()).map(modelJson) };
  }

  @Post(':id/prices')
  @ApiOperation({
    summary: 'Add a price version',
    description:
      'Rates are USD per million tokens as decimal STRINGS ("2.50"; at most 10 decimals, >= 0); JSON numbers are refused so no float ever touches money. Versions are immutable: the same (model, effective_from) again is a 409, and a correction is a new version. New usage is priced with it from the next ingest batch; already priced usage changes only via POST /admin/reprice.',
  })
  @ApiAnswer(PriceVersionSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  addPrice(@ValidParam('id', idFilter) modelId: string, @ValidBody(priceBody) p: z.output<typeof priceBody>, @CurrentActor() actor: Actor) {
    return addPriceVersion(this.models, modelId, p, actor);
  }
}

// The dashboard's price book page validates with this very schema.
export { priceBody };
