import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { RangeRepriceResult } from '@tokenmeter/ingest';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, errorResponses } from '../common/openapi';
import { idFilter, instant, rangeRule, ValidBody, whenValid } from '../common/validation';
import { AdminRepriceService } from './admin-reprice.service';

const body = whenValid(
  z
    .object({
      from: instant,
      to: instant.describe('exclusive'),
      account_id: idFilter.nullish(),
      // Omitted means a dry run: applying must be asked for explicitly.
      dry_run: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
    })
    .strict(),
  rangeRule,
);

const TOTALS = {
  events: { type: 'integer' },
  events_changed: { type: 'integer' },
  cost_before_usd: { type: 'string', example: '12.3400000000000000' },
  cost_after_usd: { type: 'string' },
};

function resultJson(r: RangeRepriceResult) {
  return {
    by_account_model: r.groups.map((g) => ({
      account_id: g.accountId,
      model: g.model,
      events: g.events,
      events_changed: g.eventsChanged,
      cost_before_usd: g.costBeforeUsd,
      cost_after_usd: g.costAfterUsd,
    })),
    totals: {
      events: r.totals.events,
      events_changed: r.totals.eventsChanged,
      cost_before_usd: r.totals.costBeforeUsd,
      cost_after_usd: r.totals.costAfterUsd,
    },
  };
}

@ApiTags('admin: price book')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/reprice')
export class RepriceController {
  constructor(private readonly repricer: AdminRepriceService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Recompute the cost of not-invoiced usage in [from, to) with the price book and overrides now',
    description:
      'Covers priced and unpriced events. Answers cost before and after per (account, model). dry_run (default true) changes nothing; otherwise events and hourly rollups are updated in one transaction, with an audit entry. 409 if any event of the range (and account) is already invoiced: those are corrected on the next invoice.',
  })
  @ApiResponse({
    status: 200,
    schema: {
      type: 'object',
      properties: {
        from: { type: 'string', format: 'date-time' },
        to: { type: 'string', format: 'date-time' },
        account_id: { type: 'string', nullable: true },
        dry_run: { type: 'boolean' },
        by_account_model: { type: 'array', items: { type: 'object', properties: { account_id: { type: 'string' }, model: { type: 'string' }, ...TOTALS } } },
        totals: { type: 'object', properties: TOTALS },
      },
    },
  })
  @errorResponses(...ADMIN_ERRORS, 409)
  async reprice(@ValidBody(body) b: z.output<typeof body>, @CurrentActor() actor: Actor) {
    const result = await this.repricer.repriceRange({ from: b.from, to: b.to, accountId: b.account_id ?? undefined }, b.dry_run, actor);
    return { from: b.from.toISOString(), to: b.to.toISOString(), account_id: b.account_id ?? null, dry_run: b.dry_run, ...resultJson(result) };
  }
}
