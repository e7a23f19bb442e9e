import { Injectable } from '@nestjs/common';
import { AuditLogRepository, Transactor, type RepriceFilter } from '@tokenmeter/db';
import { RepriceService, type RangeRepriceResult } from '@tokenmeter/ingest';
import type { Actor } from '../common/actor';

/** POST /admin/reprice: the range reprice from libs/ingest, with its audit entry in the same transaction. */
@Injectable()
export class AdminRepriceService {
  constructor(
    private readonly reprice: RepriceService,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  repriceRange(filter: RepriceFilter, dryRun: boolean, actor: Actor): Promise<RangeRepriceResult> {
    const scope = { from: filter.from.toISOString(), to: filter.to.toISOString(), account_id: filter.accountId ?? null };
    return this.reprice.repriceRange(this.transactor, filter, {
      dryRun,
      beforeCommit: (q, result) =>
        this.audit.append(
          {
            actorKeyId: actor.keyId,
            action: 'usage.reprice',
            targetType: 'usage_events',
            targetId: `${scope.account_id ?? '*'}@${scope.from}/${scope.to}`,
            before: { ...scope, cost_usd: result.totals.costBeforeUsd, events: result.totals.events },
            after: { ...scope, cost_usd: result.totals.costAfterUsd, events_changed: result.totals.eventsChanged },
            requestId: actor.requestId,
          },
          q,
        ),
    });
  }
}
