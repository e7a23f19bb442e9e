import { applyDecorators, Controller, Get, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { EventFilter } from '@tokenmeter/db';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import {
  decodeCursor,
  decodeEventCursor,
  decodeIdCursor,
  invalid,
  parseBooleanFlag,
  parseEnum,
  parseId,
  parseLimit,
  parseRange,
} from '../usage/query-params';
import { UsageService } from '../usage/usage.service';
import { AdminUsageService } from './admin-usage.service';
import { EXPORT_CONTENT_TYPES, exportEncoder } from './event-export';

type Query = Record<string, unknown>;

const EVENT_FILTERS = [
  { name: 'account_id', required: false },
  { name: 'model', required: false },
  { name: 'api_key_id', required: false },
  { name: 'from', required: false, description: 'occurred_at >= from (RFC 3339)' },
  { name: 'to', required: false, description: 'occurred_at < to (RFC 3339)' },
  { name: 'event_id', required: false },
  { name: 'request_id', required: false },
  { name: 'flagged', required: false, description: 'true: only events with audit flags' },
];

const ApiEventFilters = () => applyDecorators(...EVENT_FILTERS.map((q) => ApiQuery(q)));

function eventFilter(query: Query): EventFilter {
  return {
    ...parseRange(query, { required: false, hourAligned: false }),
    accountId: parseId('account_id', query.account_id),
    model: parseId('model', query.model),
    apiKeyId: parseId('api_key_id', query.api_key_id),
    eventId: parseId('event_id', query.event_id),
    requestId: parseId('request_id', query.request_id),
    flagged: parseBooleanFlag('flagged', query.flagged),
  };
}

/**
 * Admin audit reads. No @Roles: admin only (see auth/principal.ts). Each handler takes the
 * principal so that, whatever guard is installed, a request without one is a 401.
 */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('admin')
export class AdminUsageController {
  constructor(
    private readonly admin: AdminUsageService,
    private readonly usage: UsageService,
  ) {}

  @Get('events')
  @ApiOperation({ summary: 'Events across accounts with filters, newest first, cursor-paginated (receipts)' })
  @ApiEventFilters()
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'cursor', required: false })
  events(@CurrentPrincipal() _principal: Principal, @Query() query: Query) {
    return this.usage.listReceipts(eventFilter(query), parseLimit(query.limit), decodeEventCursor(query.cursor));
  }

  /**
   * Streams every matching event, oldest first, as CSV or NDJSON with constant memory. Once the
   * first byte is sent the status is 200; a failure after that truncates the body (no final
   * chunk), which HTTP clients report as an incomplete response, never as a complete export.
   */
  @Get('events/export')
  @ApiOperation({ summary: 'Export matching events as CSV or NDJSON, streamed' })
  @ApiProduces('text/csv', 'application/x-ndjson')
  @ApiQuery({ name: 'format', required: false, enum: ['csv', 'ndjson'] })
  @ApiEventFilters()
  async export(@CurrentPrincipal() _principal: Principal, @Query() query: Query, @Res() res: Response): Promise<void> {
    const format = parseEnum('format', query.format, ['csv', 'ndjson'] as const, 'csv');
    const filter = eventFilter(query);
    const stream = await this.admin.streamEvents(filter);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    res.status(200);
    res.setHeader('Content-Type', EXPORT_CONTENT_TYPES[format]);
    res.setHeader('Content-Disposition', `attachment; filename="tokenmeter-events-${stamp}.${format}"`);
    res.setHeader('Cache-Control', 'no-store');
    try {
      await pipeline(stream.rows, exportEncoder(format), res);
    } catch {
      // Client went away or the query failed mid-stream: pipeline() has destroyed every stream,
      // the cursor's connection has been discarded, and the client sees a truncated response.
      stream.release();
    }
  }

  @Get('rejected-events')
  @ApiOperation({ summary: 'Events refused at ingest, with the raw payload and the reason, newest first' })
  @ApiQuery({ name: 'from', required: false, description: 'received_at >= from' })
  @ApiQuery({ name: 'to', required: false, description: 'received_at < to' })
  @ApiQuery({ name: 'reason_code', required: false })
  @ApiQuery({ name: 'source', required: false, enum: ['kafka', 'http'] })
  @ApiQuery({ name: 'event_id', required: false })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'cursor', required: false })
  rejectedEvents(@CurrentPrincipal() _principal: Principal, @Query() query: Query) {
    const filter = {
      ...parseRange(query, { required: false, hourAligned: false }),
      reasonCode: parseId('reason_code', query.reason_code),
      source: parseId('source', query.source),
      eventId: parseId('event_id', query.event_id),
    };
    return this.admin.listRejectedEvents(filter, parseLimit(query.limit), decodeIdCursor(query.cursor));
  }

  @Get('event-conflicts')
  @ApiOperation({ summary: 'Reused event ids with a different payload (the first stands), newest first' })
  @ApiQuery({ name: 'from', required: false, description: 'received_at >= from' })
  @ApiQuery({ name: 'to', required: false, description: 'received_at < to' })
  @ApiQuery({ name: 'event_id', required: false })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'cursor', required: false })
  eventConflicts(@CurrentPrincipal() _principal: Principal, @Query() query: Query) {
    const filter = { ...parseRange(query, { required: false, hourAligned: false }), eventId: parseId('event_id', query.event_id) };
    return this.admin.listEventConflicts(filter, parseLimit(query.limit), decodeIdCursor(query.cursor));
  }

  @Get('unpriced-usage')
  @ApiOperation({ summary: 'Events with no price in force, grouped by model and account' })
  @ApiQuery({ name: 'account_id', required: false })
  @ApiQuery({ name: 'model', required: false })
  @ApiQuery({ name: 'from', required: false })
  @ApiQuery({ name: 'to', required: false })
  unpricedUsage(@CurrentPrincipal() _principal: Principal, @Query() query: Query) {
    return this.admin.listUnpricedUsage({
      ...parseRange(query, { required: false, hourAligned: false }),
      accountId: parseId('account_id', query.account_id),
      model: parseId('model', query.model),
    });
  }

  @Get('usage/accounts')
  @ApiOperation({ summary: 'Per-account totals over [from, to) from rollups, largest cost first' })
  @ApiQuery({ name: 'from', required: true, description: 'Inclusive, a whole UTC hour' })
  @ApiQuery({ name: 'to', required: true, description: 'Exclusive, a whole UTC hour' })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'cursor', required: false })
  accountTotals(@CurrentPrincipal() _principal: Principal, @Query() query: Query) {
    const range = parseRange(query, { required: true, hourAligned: true });
    const cursor = decodeCursor(query.cursor, 2);
    if (cursor && !/^-?\d+(\.\d+)?$/.test(cursor[0])) throw invalid('cursor', 'is not a cursor returned by this API');
    const after = cursor ? { costUsd: cursor[0], accountId: cursor[1] } : undefined;
    return this.admin.listAccountTotals(range, parseLimit(query.limit), after);
  }
}
