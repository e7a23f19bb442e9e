import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiError } from '../common/api-error';
import { ApiAnswer } from '../common/openapi';
import { CurrentPrincipal, Roles, scopeAccount, type Principal } from '../auth/principal';
import { choice, eventCursor, idFilter, pageLimit, rangeQuery, textFilter, ValidParam, ValidQuery } from '../common/validation';
import {
  type ReceiptJson,
  type ReceiptPageJson,
  ReceiptPageSchema,
  ReceiptSchema,
  type UsageSummaryJson,
  UsageSummarySchema,
  type UsageTimeseriesJson,
  UsageTimeseriesSchema,
} from './usage-json';
import { UsageService } from './usage.service';

// account_id is for admin keys (required for them); an account key reads its own account.
const accountId = idFilter.optional().describe('Admin keys only (required for them): the account to read');

// The narrowing every account read accepts; exported with the route schemas for the dashboard's
// pages (apps/api/src/web/pages), which validate with these same fields.
export const usageFilterFields = {
  model: textFilter(128).optional().describe('Only this model'),
  api_key_id: idFilter.optional().describe('Only this API key'),
  account_id: accountId,
};
export const summaryQuery = rangeQuery({ required: true, hourAligned: true }, usageFilterFields);
export const TIMESERIES_GROUPS = ['none', 'model', 'api_key'] as const;
export const timeseriesQuery = rangeQuery(
  { required: true, hourAligned: true },
  { granularity: choice(['hour', 'day'], 'hour'), group_by: choice(TIMESERIES_GROUPS, 'none'), ...usageFilterFields },
);
export const eventsQuery = rangeQuery(
  { required: true, hourAligned: false },
  { ...usageFilterFields, request_id: textFilter(256).optional().describe('Only the event(s) of this gateway request id'), limit: pageLimit, cursor: eventCursor },
);
export const receiptQuery = z.object({ account_id: accountId });

const filterOf = (q: { model?: string; api_key_id?: string }) => ({ model: q.model, apiKeyId: q.api_key_id });

// Each route's glue (scope -> service call) written once, as functions the dashboard's pages
// (apps/api/src/web/pages) call too: a page shows the number its route answers, from this code.

export function getUsageSummary(usage: UsageService, principal: Principal, q: z.output<typeof summaryQuery>): Promise<UsageSummaryJson> {
  return usage.getSummary(scopeAccount(principal, q.account_id), q, filterOf(q));
}

export function listUsageBuckets(usage: UsageService, principal: Principal, q: z.output<typeof timeseriesQuery>): Promise<UsageTimeseriesJson> {
  return usage.listBuckets(scopeAccount(principal, q.account_id), q, q.granularity, q.group_by, filterOf(q));
}

export function listUsageReceipts(usage: UsageService, principal: Principal, q: z.output<typeof eventsQuery>): Promise<ReceiptPageJson> {
  const filter = { accountId: scopeAccount(principal, q.account_id), from: q.from, to: q.to, ...filterOf(q), requestId: q.request_id };
  return usage.listReceipts(filter, q.limit, q.cursor);
}

/** Another account's event is a 404 exactly like a missing one: ids cannot be probed. */
export async function getUsageReceiptOrFail(
  usage: UsageService,
  principal: Principal,
  eventId: string,
  q: z.output<typeof receiptQuery>,
): Promise<ReceiptJson> {
  const receipt = await usage.getReceipt(eventId, scopeAccount(principal, q.account_id));
  if (!receipt) throw new ApiError(404, 'not_found', 'event not found');
  return receipt;
}

/** Account dashboards and receipts. An account key sees its own account; an admin names one with account_id. */
@ApiTags('usage')
@ApiBearerAuth()
@Controller('v1/usage')
@Roles('account', 'admin')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get('summary')
  @ApiOperation({ summary: 'Totals and per-model usage and cost over [from, to), from hourly rollups' })
  @ApiAnswer(UsageSummarySchema)
  summary(@CurrentPrincipal() principal: Principal, @ValidQuery(summaryQuery) q: z.output<typeof summaryQuery>) {
    return getUsageSummary(this.usage, principal, q);
  }

  @Get('timeseries')
  @ApiOperation({ summary: 'Usage and cost per hour or UTC day, optionally per model or API key (non-empty buckets only)' })
  @ApiAnswer(UsageTimeseriesSchema)
  timeseries(@CurrentPrincipal() principal: Principal, @ValidQuery(timeseriesQuery) q: z.output<typeof timeseriesQuery>) {
    return listUsageBuckets(this.usage, principal, q);
  }

  @Get('events')
  @ApiOperation({ summary: 'Receipts of individual events, newest first, cursor-paginated' })
  @ApiAnswer(ReceiptPageSchema)
  events(@CurrentPrincipal() principal: Principal, @ValidQuery(eventsQuery) q: z.output<typeof eventsQuery>) {
    return listUsageReceipts(this.usage, principal, q);
  }

  @Get('events/:event_id')
  @ApiOperation({ summary: 'One receipt: tokens as received and normalised, price version and rates, cost per type, invoice' })
  @ApiAnswer(ReceiptSchema)
  event(@CurrentPrincipal() principal: Principal, @ValidParam('event_id', idFilter) eventId: string, @ValidQuery(receiptQuery) q: z.output<typeof receiptQuery>) {
    return getUsageReceiptOrFail(this.usage, principal, eventId, q);
  }
}
