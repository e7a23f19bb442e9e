import { Controller, Get, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { NewPriceOverride } from '@tokenmeter/db';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { identifier, idFilter, instant, rateString, ValidBody, ValidParam, whenValid } from '../common/validation';
import { PriceOverrideListSchema, PriceOverrideSchema, priceOverrideJson } from './admin-json';
import { PriceOverridesService } from './price-overrides.service';

// A percentage, not money: a decimal string (or, as it is not money, a JSON number), in (0, 100]
// with at most 4 decimals (DECIMAL(7,4)). The pattern says exactly that, so the document and the
// check are one rule.
const PERCENT = /^(100(\.0{1,4})?|0{0,2}[1-9]\d?(\.\d{1,4})?|0{1,3}\.(?=\d*[1-9])\d{1,4})$/;
const PERCENT_RULE = 'must be a percentage in (0, 100] with at most 4 decimals, e.g. "12.5"';
const percentString = z.string({ invalid_type_error: 'must be a decimal such as "12.5"' }).regex(PERCENT, PERCENT_RULE);
const percent = z
  .union([percentString, z.number().gt(0).lte(100).multipleOf(0.0001)], { errorMap: () => ({ message: PERCENT_RULE }) })
  .transform(String)
  .pipe(percentString);

const common = { effective_from: instant, effective_to: instant.nullish() };

const overrideBody = z
  .discriminatedUnion(
    'kind',
    [
      z
        .object({
          kind: z.literal('rate_card'),
          model_id: identifier,
          input_per_mtok: rateString,
          output_per_mtok: rateString,
          cache_read_per_mtok: rateString,
          cache_write_per_mtok: rateString.nullish(),
          ...common,
        })
        .strict(),
      z.object({ kind: z.literal('discount'), model_id: identifier.nullish(), discount_percent: percent, ...common }).strict(),
    ],
    { errorMap: () => ({ message: 'must be "rate_card" or "discount"' }) },
  );
const body = whenValid(overrideBody, (b, ctx) => {
  if (b.effective_to && b.effective_to.getTime() <= b.effective_from.getTime()) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be after effective_from', path: ['effective_to'] });
  }
});

@ApiTags('admin: price book')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/accounts/:id/price-overrides')
export class PriceOverridesController {
  constructor(private readonly overrides: PriceOverridesService) {}

  @Post()
  @ApiOperation({
    summary: 'Add a rate card or a discount for an account',
    description: [
      'Applied at pricing time to usage at effective_from <= occurred_at < effective_to (ingest picks it up from its next batch; use POST /admin/reprice for usage already priced).',
      '`rate_card` (model_id and input/output/cache_read rates required; cache_write null = input rate) replaces the list rates for that model.',
      'Otherwise a `discount` in force applies (a model-specific one beats an all-models one, model_id null): each per-type cost x (1 - percent/100), exactly.',
      'Among overlapping overrides of the same kind the latest effective_from wins; they never stack. The event still records the list price version in force, plus price_override_id.',
      'Rates are decimal strings ("2.50"), never JSON numbers.',
    ].join(' '),
  })
  @ApiAnswer(PriceOverrideSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 404)
  async create(@ValidParam('id', idFilter) accountId: string, @ValidBody(body) b: z.output<typeof body>, @CurrentActor() actor: Actor) {
    const created = await this.overrides.createPriceOverride(newOverrideOf(accountId, b), actor);
    return priceOverrideJson(created);
  }

  @Get()
  @ApiOperation({ summary: "An account's overrides, by effective_from" })
  @ApiAnswer(PriceOverrideListSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async list(@ValidParam('id', idFilter) accountId: string) {
    return { data: (await this.overrides.listPriceOverrides(accountId)).map(priceOverrideJson) };
  }
}

/** The override a validated body asks for (the JSON route and the dashboard's form both use it). */
export function newOverrideOf(accountId: string, b: z.output<typeof body>): NewPriceOverride {
  return b.kind === 'rate_card'
    ? {
        accountId,
        kind: 'rate_card',
        modelId: b.model_id,
        discountPercent: null,
        inputPerMTok: b.input_per_mtok,
        outputPerMTok: b.output_per_mtok,
        cacheReadPerMTok: b.cache_read_per_mtok,
        cacheWritePerMTok: b.cache_write_per_mtok ?? null,
        effectiveFrom: b.effective_from,
        effectiveTo: b.effective_to ?? null,
      }
    : {
        accountId,
        kind: 'discount',
        modelId: b.model_id ?? null,
        discountPercent: b.discount_percent,
        inputPerMTok: null,
        outputPerMTok: null,
        cacheReadPerMTok: null,
        cacheWritePerMTok: null,
        effectiveFrom: b.effective_from,
        effectiveTo: b.effective_to ?? null,
      };
}

// The dashboard's account page validates with this very schema.
export { body as priceOverrideBody };
