import { Controller, Get, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, errorResponses } from '../common/openapi';
import { DECIMAL_RATE, freeText, identifier, idFilter, instant, rateString, ValidBody, ValidParam } from '../common/validation';
import { modelJson, priceVersionJson } from './admin-json';
import { ModelsService } from './models.service';

const positiveInt = z.number({ invalid_type_error: 'must be an integer' }).int('must be an integer').min(1, 'must be at least 1').max(1_000_000_000);
const text = freeText(200);

const modelBody = z
  .object({ id: identifier, display_name: text.nullish(), provider: text.nullish(), context_window: positiveInt.nullish(), max_output_tokens: positiveInt.nullish() })
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

const RATE = { type: 'string', pattern: DECIMAL_RATE.source, example: '2.50', description: 'USD per million tokens, a decimal STRING (numbers are refused)' };
const VERSION_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model_id: { type: 'string' },
    effective_from: { type: 'string', format: 'date-time' },
    input_per_mtok: RATE,
    output_per_mtok: RATE,
    cache_read_per_mtok: RATE,
    cache_write_per_mtok: { ...RATE, nullable: true, description: 'null: cache writes cost the input rate' },
  },
};
const MODEL_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string', example: 'gpt-4o' },
    display_name: { type: 'string', nullable: true },
    provider: { type: 'string', nullable: true },
    context_window: { type: 'integer', nullable: true },
    max_output_tokens: { type: 'integer', nullable: true },
    created_at: { type: 'string', format: 'date-time' },
    prices: { type: 'array', items: VERSION_SCHEMA },
  },
};

@ApiTags('admin: price book')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/models')
export class ModelsController {
  constructor(private readonly models: ModelsService) {}

  @Post()
  @ApiOperation({ summary: 'Add a model (409 if it exists)' })
  @ApiResponse({ status: 201, schema: MODEL_SCHEMA })
  @errorResponses(...ADMIN_ERRORS, 409)
  async create(@ValidBody(modelBody) m: z.output<typeof modelBody>, @CurrentActor() actor: Actor) {
    const created = await this.models.createModel(
      { id: m.id, displayName: m.display_name ?? null, provider: m.provider ?? null, contextWindow: m.context_window ?? null, maxOutputTokens: m.max_output_tokens ?? null },
      actor,
    );
    return modelJson(created);
  }

  @Get()
  @ApiOperation({ summary: 'All models with their price versions (oldest first)' })
  @ApiResponse({ status: 200, schema: { type: 'object', properties: { data: { type: 'array', items: MODEL_SCHEMA } } } })
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
  @ApiResponse({ status: 201, schema: VERSION_SCHEMA })
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  async addPrice(@ValidParam('id', idFilter) modelId: string, @ValidBody(priceBody) p: z.output<typeof priceBody>, @CurrentActor() actor: Actor) {
    const version = await this.models.createPriceVersion(
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
}
