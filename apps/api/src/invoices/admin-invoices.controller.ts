import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { InvoicesRepository } from '@tokenmeter/db';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService, type CloseSummary } from '@tokenmeter/invoicing';
import { ApiError } from '../common/api-error';
import { CurrentPrincipal, Roles, type Principal } from '../auth/principal';
import { invoiceJson } from './invoice-json';
import { mapInvoicingErrors } from './invoice-errors';

const closeBody = z
  .object({
    period: z.string(),
    account_id: z.string().min(1).max(128).optional(),
    dry_run: z.boolean().optional(),
    force: z.boolean().optional(),
    finalize: z.boolean().optional(),
  })
  .strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.path.join('.') || 'body';
  throw new ApiError(400, 'validation_failed', `${field}: ${issue.message}`, { field });
}

/** Admin-only (no @Roles): closing, finalizing, voiding, re-syncing and reconciling invoices. */
@ApiTags('admin: invoices')
@ApiBearerAuth()
@Controller('admin')
export class AdminInvoicesController {
  constructor(
    @Inject(InvoicesRepository) private readonly invoices: InvoicesRepository,
    @Inject(InvoiceCloseService) private readonly closer: InvoiceCloseService,
    @Inject(InvoiceSyncService) private readonly sync: InvoiceSyncService,
    @Inject(ReconciliationService) private readonly reconciliation: ReconciliationService,
  ) {}

  @Post('invoices/close')
  @HttpCode(200)
  @ApiOperation({ summary: 'Close a month: build drafts from usage and (unless finalize=false) push them to Stripe. 409 while ingestion is incomplete, unless force.' })
  async close(@Body() body: unknown, @CurrentPrincipal() principal: Principal) {
    const input = parseBody(closeBody, body);
    const summary = await mapInvoicingErrors(() =>
      this.closer.close(input.period, {
        accountId: input.account_id,
        dryRun: input.dry_run,
        force: input.force,
        finalize: input.finalize,
        actorKeyId: principal.keyId,
      }),
    );
    return closeSummaryJson(summary);
  }

  @Post('invoices/:id/finalize')
  @HttpCode(200)
  @ApiOperation({ summary: 'Push a draft to Stripe and finalize it (status sync_failed with the reason if Stripe keeps failing)' })
  finalize(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.finalize(id, principal.keyId));
  }

  @Post('invoices/:id/retry-sync')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a failed or interrupted Stripe push from its last stored step' })
  retrySync(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.retrySync(id, principal.keyId));
  }

  @Post('invoices/:id/void')
  @HttpCode(200)
  @ApiOperation({ summary: 'Void an invoice (in Stripe too once finalized there); its usage is not billed again' })
  void(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.void(id, principal.keyId));
  }

  @Get('reconciliation')
  @ApiOperation({ summary: 'Per account: raw events vs rollups (must agree exactly), invoice header vs lines vs claimed events, Stripe total' })
  async reconcile(@Query('period') period?: string, @Query('account_id') accountId?: string, @Query('stripe') stripe?: string) {
    if (!period) throw new ApiError(400, 'validation_failed', 'period: required, e.g. 2026-11', { field: 'period' });
    return mapInvoicingErrors(() => this.reconciliation.reconcile(period, { accountId, withStripe: stripe !== 'false' }));
  }

  /** The action audits itself (in its own transaction); the answer is the invoice as it left it. */
  private async act(id: string, fn: () => Promise<unknown>) {
    await mapInvoicingErrors(fn);
    const after = (await this.invoices.getInvoice(id))!;
    return invoiceJson(after, await this.invoices.listLines(id), { admin: true });
  }
}

function closeSummaryJson(s: CloseSummary) {
  return {
    period: s.period,
    dry_run: s.dryRun,
    forced: s.forced,
    accounts: s.accounts,
    created: s.created,
    updated: s.updated,
    already_final: s.alreadyFinal,
    finalized: s.finalized,
    sync_failed: s.syncFailed,
    total_minor: Number(s.totalMinor),
    invoices: s.results.map((r) => ({
      account_id: r.accountId,
      outcome: r.outcome,
      invoice_id: r.invoiceId,
      status: r.status,
      claimed_events: r.claimedEvents,
      lines: r.lines,
      total_minor: Number(r.totalMinor),
      total_exact_usd: r.totalExactUsd,
      sync_error: r.sync?.error ?? null,
    })),
  };
}
