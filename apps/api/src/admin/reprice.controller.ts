import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { RangeRepriceResult } from '@tokenmeter/ingest';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { dateTime, integerCount, usdAmount } from '../common/response-fields';
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
  events: integerCount.describe('Not-invoiced events of the range'),
  events_changed: integerCount.describe('Events whose price version, override or cost changes'),
  cost_before_usd: usdAmount,
  cost_after_usd: usdAmount,
};

const RepriceResultSchema = z
  .object({
    from: dateTime,
    to: dateTime.describe('Exclusive'),
    account_id: z.string().nullable().describe('null: every account'),
    dry_run: z.boolean().describe('true: nothing was changed'),
    by_account_model: z.array(z.object({ account_id: z.string(), model: z.string(), ...TOTALS }).strict()),
    totals: z.object(TOTALS).strict(),
  })
  .strict();
type RepriceResultJson = z.input<typeof RepriceResultSchema>;

function resultJson(r: RangeRepriceResult): Pick<RepriceResultJson, 'by_account_model' | 'totals'> {
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

/** The route's answer for a body; the dashboard's reprice page runs its dry run and its apply through this. */
export async function repriceRange(repricer: AdminRepriceService, b: z.output<typeof body>, actor: Actor): Promise<RepriceResultJson> {
  const result = await repricer.repriceRange({ from: b.from, to: b.to, accountId: b.account_id ?? undefined }, b.dry_run, actor);
  return { from: b.from.toISOString(), to: b.to.toISOString(), account_id: b.account_id ?? null, dry_run: b.dry_run, ...resultJson(result) };
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
  @ApiAnswer(RepriceResultSchema)
  @errorResponses(...ADMIN_ERRORS, 409)
  reprice(@ValidBody(body) b: z.output<typeof body>, @CurrentActor() actor: Actor): Promise<RepriceResultJson> {
    return repriceRange(this.repricer, b, actor);
  }
}

// The dashboard's reprice page validates with this (and answers through repriceRange).
export { body as repriceBody };
