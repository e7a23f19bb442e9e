import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApiError } from '../common/api-error';
import { CurrentPrincipal, Roles, scopeAccount, type Principal } from '../auth/principal';
import { decodeEventCursor, parseEnum, parseId, parseLimit, parseRange, single } from './query-params';
import { UsageService } from './usage.service';

type Query = Record<string, unknown>;

const ACCOUNT_ID = { name: 'account_id', required: false, description: 'Admin keys only (required for them): the account to read' };
const FROM_HOUR = { name: 'from', required: true, description: 'Inclusive, RFC 3339, a whole UTC hour' };
const TO_HOUR = { name: 'to', required: true, description: 'Exclusive, RFC 3339, a whole UTC hour, at most 400 days after from' };

/** Account dashboards and receipts. An account key sees its own account; an admin names one with account_id. */
@ApiTags('usage')
@ApiBearerAuth()
@Controller('v1/usage')
@Roles('account', 'admin')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get('summary')
  @ApiOperation({ summary: 'Totals and per-model usage and cost over [from, to), from hourly rollups' })
  @ApiQuery(FROM_HOUR)
  @ApiQuery(TO_HOUR)
  @ApiQuery(ACCOUNT_ID)
  summary(@CurrentPrincipal() principal: Principal, @Query() query: Query) {
    const accountId = scopeAccount(principal, single('account_id', query.account_id));
    return this.usage.getSummary(accountId, parseRange(query, { required: true, hourAligned: true }));
  }

  @Get('timeseries')
  @ApiOperation({ summary: 'Usage and cost per hour or UTC day, optionally per model or API key (non-empty buckets only)' })
  @ApiQuery(FROM_HOUR)
  @ApiQuery(TO_HOUR)
  @ApiQuery({ name: 'granularity', required: false, enum: ['hour', 'day'] })
  @ApiQuery({ name: 'group_by', required: false, enum: ['none', 'model', 'api_key'] })
  @ApiQuery(ACCOUNT_ID)
  timeseries(@CurrentPrincipal() principal: Principal, @Query() query: Query) {
    const accountId = scopeAccount(principal, single('account_id', query.account_id));
    const range = parseRange(query, { required: true, hourAligned: true });
    const granularity = parseEnum('granularity', query.granularity, ['hour', 'day'] as const, 'hour');
    const groupBy = parseEnum('group_by', query.group_by, ['none', 'model', 'api_key'] as const, 'none');
    return this.usage.listBuckets(accountId, range, granularity, groupBy);
  }

  @Get('events')
  @ApiOperation({ summary: 'Receipts of individual events, newest first, cursor-paginated' })
  @ApiQuery({ name: 'from', required: true, description: 'Inclusive, RFC 3339' })
  @ApiQuery({ name: 'to', required: true, description: 'Exclusive, RFC 3339, at most 400 days after from' })
  @ApiQuery({ name: 'model', required: false })
  @ApiQuery({ name: 'api_key_id', required: false })
  @ApiQuery({ name: 'limit', required: false, description: '1 to 1000, default 100' })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page' })
  @ApiQuery(ACCOUNT_ID)
  events(@CurrentPrincipal() principal: Principal, @Query() query: Query) {
    const accountId = scopeAccount(principal, single('account_id', query.account_id));
    const range = parseRange(query, { required: true, hourAligned: false });
    const filter = { accountId, ...range, model: parseId('model', query.model), apiKeyId: parseId('api_key_id', query.api_key_id) };
    return this.usage.listReceipts(filter, parseLimit(query.limit), decodeEventCursor(query.cursor));
  }

  @Get('events/:event_id')
  @ApiOperation({ summary: 'One receipt: tokens as received and normalised, price version and rates, cost per type, invoice' })
  @ApiParam({ name: 'event_id' })
  @ApiQuery(ACCOUNT_ID)
  async event(@CurrentPrincipal() principal: Principal, @Param('event_id') eventId: string, @Query() query: Query) {
    const accountId = scopeAccount(principal, single('account_id', query.account_id));
    const receipt = await this.usage.getReceipt(eventId, accountId);
    if (!receipt) throw new ApiError(404, 'not_found', 'event not found');
    return receipt;
  }
}
