import { Controller, Get, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { EVENT_EXPORT_COLUMNS, type EventFilter } from '@tokenmeter/db';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { ApiAnswer } from '../common/openapi';
import { booleanFlag, choice, cursor, eventCursor, idCursor, idFilter, pageLimit, rangeQuery, textFilter, ValidQuery } from '../common/validation';
import { ReceiptPageSchema } from '../usage/usage-json';
import { UsageService } from '../usage/usage.service';
import { AccountTotalsPageSchema, EventConflictPageSchema, RejectedEventPageSchema, UnpricedUsageSchema } from './admin-usage-responses';
import { AdminUsageService } from './admin-usage.service';
import { sendEventExport } from './event-export';

const EVENT_FILTERS = {
  account_id: idFilter.optional(),
  model: textFilter(128).optional(),
  api_key_id: idFilter.optional(),
  event_id: idFilter.optional(),
  request_id: textFilter(256).optional(),
  flagged: booleanFlag.optional().describe('true: only events with audit flags'),
};
const eventsQuery = rangeQuery({ required: false, hourAligned: false }, { ...EVENT_FILTERS, limit: pageLimit, cursor: eventCursor });
const exportQuery = rangeQuery({ required: false, hourAligned: false }, { ...EVENT_FILTERS, format: choice(['csv', 'ndjson'], 'csv') });
const rejectedQuery = rangeQuery(
  { required: false, hourAligned: false, what: 'received_at' },
  { reason_code: textFilter(64).optional(), source: z.enum(['kafka', 'http']).optional(), event_id: idFilter.optional(), limit: pageLimit, cursor: idCursor },
);
const conflictsQuery = rangeQuery(
  { required: false, hourAligned: false, what: 'received_at' },
  { event_id: idFilter.optional(), limit: pageLimit, cursor: idCursor },
);
const unpricedQuery = rangeQuery({ required: false, hourAligned: false }, { account_id: idFilter.optional(), model: textFilter(128).optional() });
// The account-totals cursor: (cost of the last account, its id).
const totalsCursor = cursor(2, ([cost]) => /^-?\d+(\.\d+)?$/.test(cost)).transform((p) => (p ? { costUsd: p[0], accountId: p[1] } : undefined));
const accountTotalsQuery = rangeQuery({ required: true, hourAligned: true }, { limit: pageLimit, cursor: totalsCursor });

function eventFilter(q: z.output<typeof exportQuery> | z.output<typeof eventsQuery>): EventFilter {
  return {
    from: q.from,
    to: q.to,
    accountId: q.account_id,
    model: q.model,
    apiKeyId: q.api_key_id,
    eventId: q.event_id,
    requestId: q.request_id,
    flagged: q.flagged,
  };
}

// Each route's glue (query -> filter -> service call) written once: the dashboard's admin pages
// (apps/api/src/web/pages/admin) call these very functions, so a page lists what its route answers.

export function listAdminReceipts(usage: UsageService, q: z.output<typeof eventsQuery>) {
  return usage.listReceipts(eventFilter(q), q.limit, q.cursor);
}

export async function sendAdminEventExport(admin: AdminUsageService, q: z.output<typeof exportQuery>, res: Response): Promise<void> {
  await sendEventExport(await admin.streamEvents(eventFilter(q)), q.format, res);
}

export function listRejectedEvents(admin: AdminUsageService, q: z.output<typeof rejectedQuery>) {
  const filter = { from: q.from, to: q.to, reasonCode: q.reason_code, source: q.source, eventId: q.event_id };
  return admin.listRejectedEvents(filter, q.limit, q.cursor);
}

export function listEventConflicts(admin: AdminUsageService, q: z.output<typeof conflictsQuery>) {
  return admin.listEventConflicts({ from: q.from, to: q.to, eventId: q.event_id }, q.limit, q.cursor);
}

export function listUnpricedUsage(admin: AdminUsageService, q: z.output<typeof unpricedQuery>) {
  return admin.listUnpricedUsage({ from: q.from, to: q.to, accountId: q.account_id, model: q.model });
}

export function listAccountTotals(admin: AdminUsageService, q: z.output<typeof accountTotalsQuery>) {
  return admin.listAccountTotals({ from: q.from, to: q.to }, q.limit, q.cursor);
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
  @ApiAnswer(ReceiptPageSchema)
  events(@CurrentPrincipal() _principal: Principal, @ValidQuery(eventsQuery) q: z.output<typeof eventsQuery>) {
    return listAdminReceipts(this.usage, q);
  }

  /**
   * Streams every matching event, oldest first, as CSV or NDJSON with constant memory. Once the
   * first byte is sent the status is 200; a failure after that truncates the body (no final
   * chunk), which HTTP clients report as an incomplete response, never as a complete export.
   */
  @Get('events/export')
  @ApiOperation({ summary: 'Export matching events as CSV or NDJSON, streamed' })
  @ApiResponse({
    status: 200,
    description: `format=csv: RFC 4180 CSV with a header line (${EVENT_EXPORT_COLUMNS.join(', ')}; flags ';'-joined). format=ndjson: one JSON object per line with the same fields. Streamed; an export cut short by a failure ends without its final chunk (an incomplete response), never as a shorter complete one.`,
    content: {
      'text/csv': { schema: { type: 'string' } },
      'application/x-ndjson': { schema: { type: 'string' } },
    },
  })
  async export(@CurrentPrincipal() _principal: Principal, @ValidQuery(exportQuery) q: z.output<typeof exportQuery>, @Res() res: Response): Promise<void> {
    await sendAdminEventExport(this.admin, q, res);
  }

  @Get('rejected-events')
  @ApiOperation({ summary: 'Events refused at ingest, with the raw payload and the reason, newest first' })
  @ApiAnswer(RejectedEventPageSchema)
  rejectedEvents(@CurrentPrincipal() _principal: Principal, @ValidQuery(rejectedQuery) q: z.output<typeof rejectedQuery>) {
    return listRejectedEvents(this.admin, q);
  }

  @Get('event-conflicts')
  @ApiOperation({ summary: 'Reused event ids with a different payload (the first stands), newest first' })
  @ApiAnswer(EventConflictPageSchema)
  eventConflicts(@CurrentPrincipal() _principal: Principal, @ValidQuery(conflictsQuery) q: z.output<typeof conflictsQuery>) {
    return listEventConflicts(this.admin, q);
  }

  @Get('unpriced-usage')
  @ApiOperation({ summary: 'Events with no price in force, grouped by model and account' })
  @ApiAnswer(UnpricedUsageSchema)
  unpricedUsage(@CurrentPrincipal() _principal: Principal, @ValidQuery(unpricedQuery) q: z.output<typeof unpricedQuery>) {
    return listUnpricedUsage(this.admin, q);
  }

  @Get('usage/accounts')
  @ApiOperation({ summary: 'Per-account totals over [from, to) from rollups, largest cost first' })
  @ApiAnswer(AccountTotalsPageSchema)
  accountTotals(@CurrentPrincipal() _principal: Principal, @ValidQuery(accountTotalsQuery) q: z.output<typeof accountTotalsQuery>) {
    return listAccountTotals(this.admin, q);
  }
}

// The dashboard's admin pages validate with these very schemas (apps/api/src/web/pages/admin).
export { accountTotalsQuery, conflictsQuery, eventsQuery, exportQuery, rejectedQuery, unpricedQuery };
