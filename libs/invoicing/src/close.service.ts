import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { buildInvoiceLines, isMutable, parsePeriod, PUSHABLE_STATUSES, type BillingPeriod, type InvoiceStatus } from '@tokenmeter/billing';
import type { AuditLogRepository, IngestProgressRepository, InvoicesRepository, UsageEventClaimsRepository } from '@tokenmeter/db';
import { checkIngestionComplete, type CompletenessReport, type IngestLagProbe } from './completeness';
import { IngestionIncompleteError } from './errors';
import type { InvoiceCredits } from './invoice-credits';
import type { InvoiceSyncService, SyncOutcome } from './sync.service';
import { toInvoiceUsageRows } from './usage-rows';

export type AccountCloseOutcome = 'created' | 'updated' | 'already_final' | 'no_usage' | 'resumed';

export interface AccountCloseResult {
  accountId: string;
  outcome: AccountCloseOutcome;
  invoiceId: string | null;
  status: InvoiceStatus | null;
  /** Events newly claimed by this run. */
  claimedEvents: number;
  totalMinor: string;
  totalExactUsd: string;
  lines: number;
  sync?: SyncOutcome;
}

export interface CloseOptions {
  accountId?: string;
  /** Compute everything, write nothing (the transaction is rolled back; nothing goes to Stripe). */
  dryRun?: boolean;
  /** Close even though ingestion is not complete past the grace period. Audited. */
  force?: boolean;
  /** Push the drafts to Stripe and finalize them (default true). false leaves drafts. */
  finalize?: boolean;
  /**
   * Who asked: the API key id, or null for the invoicer CLI. Given, the close is audited
   * (invoices.close). Left out by the scheduler, whose hourly runs are not admin writes (a forced
   * close is audited whoever runs it).
   */
  actorKeyId?: string | null;
  onProgress?: (done: number, total: number) => void;
}

export interface CloseSummary {
  period: string;
  dryRun: boolean;
  forced: boolean;
  completeness: CompletenessReport;
  accounts: number;
  created: number;
  updated: number;
  alreadyFinal: number;
  noUsage: number;
  finalized: number;
  syncFailed: number;
  totalMinor: string;
  results: AccountCloseResult[];
}

export interface CloseServiceOptions {
  graceMinutes: number;
  /** Kafka topic whose ingest progress counts for completeness (undefined: every topic). */
  topic?: string;
  lagProbe?: IngestLagProbe;
  /** Accounts closed in parallel (each is one short DB transaction). */
  dbConcurrency?: number;
  clock?: () => Date;
  newInvoiceId?: () => string;
}

export function newInvoiceId(): string {
  return `inv_${randomBytes(12).toString('hex')}`;
}

/**
 * Closes a billing period: for each account with usage, (re)builds its draft invoice from the
 * events it claims, then (unless told not to) pushes drafts to Stripe and finalizes them.
 * Safe to run twice, or twice at once: see InvoicesRepository.withInvoiceLock and
 * UsageEventClaimsRepository.claimForInvoice.
 */
export class InvoiceCloseService {
  private readonly clock: () => Date;
  private readonly newId: () => string;

  constructor(
    private readonly invoices: InvoicesRepository,
    private readonly claims: UsageEventClaimsRepository,
    private readonly ingestProgress: IngestProgressRepository,
    private readonly audit: AuditLogRepository,
    private readonly sync: InvoiceSyncService | undefined,
    private readonly credits: InvoiceCredits,
    private readonly options: CloseServiceOptions,
  ) {
    this.clock = options.clock ?? (() => new Date());
    this.newId = options.newInvoiceId ?? newInvoiceId;
  }

  async checkComplete(period: string): Promise<CompletenessReport> {
    const bounds = parsePeriod(period);
    return checkIngestionComplete(this.ingestProgress, bounds.end, this.options.graceMinutes, this.clock(), this.options.topic, this.options.lagProbe);
  }

  async close(period: string, opts: CloseOptions = {}): Promise<CloseSummary> {
    const bounds = parsePeriod(period);
    const dryRun = opts.dryRun ?? false;
    const completeness = await this.checkComplete(period);
    if (!completeness.complete && !opts.force) {
      throw new IngestionIncompleteError(period, completeness.requiredUntil, completeness.lagging);
    }
    const forced = !completeness.complete && !!opts.force;
    const target = opts.accountId ? `${period}/${opts.accountId}` : period;
    // A close spans many transactions (one per account, then each push), so its audit entries
    // cannot share one with its effects. The forced entry commits before the first invoice
    // changes, so no forced invoice exists without it; invoices.close, with the counts, after
    // the last.
    if (forced && !dryRun) {
      await this.audit.append({
        actorKeyId: opts.actorKeyId ?? null,
        action: 'invoices.close.forced',
        targetType: 'period',
        targetId: target,
        before: null,
        after: { lagging: completeness.lagging, requiredUntil: completeness.requiredUntil.toISOString() },
        requestId: null,
      });
    }

    const accounts = await this.listAccountsToClose(bounds, opts.accountId);
    const results: AccountCloseResult[] = [];
    let done = 0;
    const total = accounts.length;
    const limit = pLimit(this.options.dbConcurrency ?? 4);
    await Promise.all(
      accounts.map((accountId) =>
        limit(async () => {
          results.push(await this.closeAccount(accountId, period, dryRun));
          opts.onProgress?.(++done, total);
        }),
      ),
    );

    if (!dryRun && (opts.finalize ?? true) && this.sync) {
      // Drafts from this run, plus every push of the period that has not finished: interrupted by
      // a crash (finalizing) or given up after Stripe's failures (sync_failed). So a Stripe outage
      // in the middle of the monthly close heals on the next run (the scheduler's next tick).
      const toPush = await this.invoices.listInvoices({
        period,
        accountId: opts.accountId,
        statuses: PUSHABLE_STATUSES,
        limit: 1_000_000,
      });
      const byId = new Map(results.map((r) => [r.invoiceId, r]));
      const outcomes = await this.sync.pushMany(toPush.map((i) => i.id), opts.onProgress);
      for (const o of outcomes) {
        const r = byId.get(o.invoiceId);
        if (r) {
          r.sync = o;
          r.status = o.status;
        } else {
          // A push an earlier run left half done (crashed while finalizing, or sync_failed).
          const invoice = toPush.find((i) => i.id === o.invoiceId)!;
          results.push({
            accountId: invoice.accountId,
            outcome: 'resumed',
            invoiceId: invoice.id,
            status: o.status,
            claimedEvents: 0,
            totalMinor: invoice.totalMinor,
            totalExactUsd: invoice.totalExactUsd,
            lines: 0,
            sync: o,
          });
        }
      }
    }

    results.sort((a, b) => byCodeUnit(a.accountId, b.accountId));
    const count = (o: AccountCloseOutcome) => results.filter((r) => r.outcome === o).length;
    const summary: CloseSummary = {
      period,
      dryRun,
      forced,
      completeness,
      accounts: accounts.length,
      created: count('created'),
      updated: count('updated'),
      alreadyFinal: count('already_final'),
      noUsage: count('no_usage'),
      finalized: results.filter((r) => r.sync?.status === 'finalized').length,
      syncFailed: results.filter((r) => r.sync?.status === 'sync_failed').length,
      totalMinor: results.reduce((sum, r) => sum + BigInt(r.totalMinor), 0n).toString(),
      results,
    };
    if (!dryRun && opts.actorKeyId !== undefined) {
      await this.audit.append({
        actorKeyId: opts.actorKeyId,
        action: 'invoices.close',
        targetType: 'period',
        targetId: target,
        before: null,
        after: { created: summary.created, updated: summary.updated, finalized: summary.finalized, sync_failed: summary.syncFailed },
        requestId: null,
      });
    }
    return summary;
  }

  /**
   * Accounts a close of the period has work for: unbilled priced usage up to the period end
   * (including late usage of earlier months), or a draft for this period to refresh.
   */
  private async listAccountsToClose(bounds: BillingPeriod, accountId?: string): Promise<string[]> {
    const [unbilled, drafts] = await Promise.all([
      this.claims.listAccountsWithUnbilledUsage(bounds.end, accountId),
      this.invoices.listAccountsWithDraft(bounds.period, accountId),
    ]);
    return [...new Set([...unbilled, ...drafts])].sort(byCodeUnit);
  }

  /** One account's invoice for the period, in one transaction under the (account, period) lock. */
  async closeAccount(accountId: string, period: string, dryRun: boolean): Promise<AccountCloseResult> {
    const bounds = parsePeriod(period);
    return this.invoices.withInvoiceLock<AccountCloseResult>(accountId, bounds, async (tx) => {
      const existing = await tx.getInvoice();
      if (existing && !isMutable(existing.status)) {
        // Final: late events for this month go on the next month's invoice instead.
        return {
          commit: false,
          result: {
            accountId,
            outcome: 'already_final',
            invoiceId: existing.id,
            status: existing.status,
            claimedEvents: 0,
            totalMinor: existing.totalMinor,
            totalExactUsd: existing.totalExactUsd,
            lines: 0,
          },
        };
      }
      const invoiceId = existing?.id ?? this.newId();
      if (!existing) await tx.createDraft(invoiceId);
      const claimedEvents = await tx.claimEvents(invoiceId);
      const usage = await tx.listClaimedUsage(invoiceId);
      if (usage.length === 0) {
        // No usage, no invoice (and the draft row we just inserted is rolled back).
        return {
          commit: false,
          result: { accountId, outcome: 'no_usage', invoiceId: null, status: null, claimedEvents: 0, totalMinor: '0', totalExactUsd: '0', lines: 0 },
        };
      }
      // Credits, in this same transaction: the consumption entries commit with the lines or not at all.
      const { draft } = await this.credits.applyAtClose(tx.client, accountId, invoiceId, bounds, buildInvoiceLines(period, toInvoiceUsageRows(usage)));
      await tx.replaceLines(
        invoiceId,
        draft.lines.map((l) => ({
          lineKey: l.lineKey,
          model: l.model,
          tokenType: l.tokenType,
          servicePeriod: l.servicePeriod,
          quantity: l.quantity.toString(),
          unitPricePerMTok: l.unitPricePerMTok.toFixed(),
          amountExactUsd: l.amountExactUsd.toFixed(),
          amountMinor: l.amountMinor.toString(),
          description: l.description,
        })),
        draft.totalExactUsd.toFixed(),
        draft.totalMinor.toString(),
      );
      return {
        commit: !dryRun,
        result: {
          accountId,
          outcome: existing ? 'updated' : 'created',
          invoiceId: dryRun && !existing ? null : invoiceId,
          status: 'draft',
          claimedEvents,
          totalMinor: draft.totalMinor.toString(),
          totalExactUsd: draft.totalExactUsd.toFixed(),
          lines: draft.lines.length,
        },
      };
    });
  }
}

/** Account ids are ASCII: code-unit order is the database's C-collation order. */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
