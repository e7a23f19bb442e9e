import { firstKeptPeriod, parsePeriod, retentionVerdict, type RawMonthFacts } from '@tokenmeter/billing';
import {
  ensureEventPartitions,
  type AuditLogRepository,
  type EventPartitionRecord,
  type Queryable,
  type Transactor,
  type UsageEventPartitionsRepository,
} from '@tokenmeter/db';

export interface RetentionOptions {
  keepMonths: number;
  dryRun: boolean;
  /** The run's clock: which months are old enough. */
  now: Date;
  /** Who runs it, for the audit entries (the CLI: no key, `cli:<pid>`). */
  actor: { keyId: string | null; requestId: string | null };
}

export interface RetentionMonthReport {
  period: string;
  table: string;
  events: number;
  /** dropped; would_drop (dry run); kept (with the reasons). */
  action: 'dropped' | 'would_drop' | 'kept';
  reasons: string[];
}

export interface RetentionReport {
  firstKept: string;
  dryRun: boolean;
  /** Every month table older than firstKept, and any detached one, oldest first. */
  months: RetentionMonthReport[];
}

export const RETENTION_AUDIT_ACTION = 'usage_events.drop_month';

/**
 * npm run db:retention (docs/operations.md, "Partitions and retention"): detaches and drops months
 * of raw usage events older than --keep-months, only where nothing can bill or read them again
 * (libs/billing retention.ts). Rollups, invoices and usage_event_ids (the event_id dedupe) are
 * never touched: a redelivered event of a dropped month is still a duplicate.
 *
 * Per month: check it while attached; DETACH ... CONCURRENTLY (ingest and reads carry on); then,
 * in one transaction holding the month's partition lock, check the detached table again (an event
 * may have arrived for that month in between; it went to the table before the detach, or made
 * ingest put the month back) and either DROP it with its audit entry, or attach it back.
 * Safe to run twice, and to run again after it stopped half way.
 */
export class EventRetentionService {
  constructor(
    private readonly partitions: UsageEventPartitionsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  async run(options: RetentionOptions): Promise<RetentionReport> {
    const firstKept = firstKeptPeriod(options.now, options.keepMonths);
    const months: RetentionMonthReport[] = [];
    for (const partition of await this.partitions.listPartitions()) {
      const old = partition.period < firstKept;
      if (!old && partition.state === 'attached') continue;
      months.push(await this.retire(partition, firstKept, options));
    }
    return { firstKept, dryRun: options.dryRun, months };
  }

  private async retire(partition: EventPartitionRecord, firstKept: string, options: RetentionOptions): Promise<RetentionMonthReport> {
    const { table, period } = partition;
    if (partition.state === 'attached') {
      const facts = await this.facts(partition);
      const verdict = retentionVerdict(facts, firstKept);
      if (!verdict.drop) return { period, table, events: facts.events, action: 'kept', reasons: verdict.reasons };
      if (options.dryRun) return { period, table, events: facts.events, action: 'would_drop', reasons: [] };
      await this.partitions.detachConcurrently(table);
    } else if (partition.state === 'detach_pending') {
      // A run stopped inside DETACH CONCURRENTLY: ingest cannot put this month back until it is finished.
      if (options.dryRun) return { period, table, events: 0, action: 'kept', reasons: ['half detached by an interrupted run: run without --dry-run'] };
      await this.partitions.finalizeDetach(table);
    }
    return this.dropOrPutBack(partition, firstKept, options);
  }

  /** The month is detached: drop it if it still may be dropped, else attach it back. */
  private async dropOrPutBack(partition: EventPartitionRecord, firstKept: string, options: RetentionOptions): Promise<RetentionMonthReport> {
    const { table, period } = partition;
    const monthStart = parsePeriod(period).start;
    return this.transactor.runWithOutcome(async (q) => {
      if (!(await this.partitions.lockDetachedMonth(q, table, monthStart))) {
        return { result: { period, table, events: 0, action: 'kept', reasons: ['an event arrived for this month during the run: ingest put it back'] }, commit: true };
      }
      const facts = await this.facts(partition, q);
      const verdict = retentionVerdict(facts, firstKept);
      if (options.dryRun) {
        const report: RetentionMonthReport = verdict.drop
          ? { period, table, events: facts.events, action: 'would_drop', reasons: ['detached by an earlier run'] }
          : { period, table, events: facts.events, action: 'kept', reasons: [...verdict.reasons, 'detached by an earlier run: will be attached back'] };
        return { result: report, commit: false };
      }
      if (!verdict.drop) {
        await ensureEventPartitions(q, [monthStart]);
        return { result: { period, table, events: facts.events, action: 'kept', reasons: [...verdict.reasons, 'attached back'] }, commit: true };
      }
      await this.partitions.dropDetached(q, table);
      await this.audit.append(
        {
          actorKeyId: options.actor.keyId,
          action: RETENTION_AUDIT_ACTION,
          targetType: 'usage_events_month',
          targetId: period,
          before: {
            table,
            events: facts.events,
            claiming_invoices: facts.claimingInvoices,
            period_invoice_statuses: facts.periodInvoiceStatuses,
            keep_months: options.keepMonths,
          },
          after: null,
          requestId: options.actor.requestId,
        },
        q,
      );
      return { result: { period, table, events: facts.events, action: 'dropped', reasons: [] }, commit: true };
    });
  }

  /** Read on the pool while the month is attached, in the drop's transaction once detached. */
  private async facts(partition: EventPartitionRecord, q?: Queryable): Promise<RawMonthFacts> {
    return { period: partition.period, ...(await this.partitions.getPartitionState(partition.table, partition.period, q)) };
  }
}
