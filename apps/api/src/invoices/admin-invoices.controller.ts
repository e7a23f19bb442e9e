import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService } from '@tokenmeter/invoicing';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { InvoicesService } from './invoices.service';
import {
  type CloseSummaryJson,
  CloseSummarySchema,
  closeSummaryJson,
  type InvoiceJson,
  InvoiceSchema,
  invoiceJson,
  type ReconciliationJson,
  ReconciliationSchema,
  reconciliationJson,
} from './invoice-json';
import { idFilter, period, ValidBody, ValidParam, ValidQuery } from '../common/validation';

const flag = z.boolean({ invalid_type_error: 'must be true or false' });
const closeBody = z
  .object({
    period,
    account_id: idFilter.optional().describe('close only this account'),
    dry_run: flag.optional().describe('build and report, change nothing'),
    force: flag.optional().describe('close even though ingestion is not complete past the period end'),
    finalize: flag.optional().describe('false: leave the drafts, push nothing to Stripe'),
  })
  .strict();
const reconcileQuery = z.object({
  period,
  account_id: idFilter.optional(),
  stripe: z.enum(['true', 'false'], { errorMap: () => ({ message: 'must be true or false' }) }).default('true').describe('false: skip the Stripe totals'),
});

// Each route's glue written once: the dashboard's invoice pages close and reconcile through these.

/** The close audits itself (invoices.close, and invoices.close.forced before anything changes). */
export async function closePeriod(closer: InvoiceCloseService, input: z.output<typeof closeBody>, actorKeyId: string): Promise<CloseSummaryJson> {
  const summary = await closer.close(input.period, {
    accountId: input.account_id,
    dryRun: input.dry_run,
    force: input.force,
    finalize: input.finalize,
    actorKeyId,
  });
  return closeSummaryJson(summary);
}

export async function reconcilePeriod(reconciliation: ReconciliationService, q: z.output<typeof reconcileQuery>): Promise<ReconciliationJson> {
  return reconciliationJson(await reconciliation.reconcile(q.period, { accountId: q.account_id, withStripe: q.stripe === 'true' }));
}

/** Admin-only (no @Roles): closing, finalizing, voiding, re-syncing and reconciling invoices. */
@ApiTags('admin: invoices')
@ApiBearerAuth()
@Controller('admin')
export class AdminInvoicesController {
  constructor(
    private readonly invoices: InvoicesService,
    @Inject(InvoiceCloseService) private readonly closer: InvoiceCloseService,
    @Inject(InvoiceSyncService) private readonly sync: InvoiceSyncService,
    @Inject(ReconciliationService) private readonly reconciliation: ReconciliationService,
  ) {}

  @Post('invoices/close')
  @HttpCode(200)
  @ApiOperation({ summary: 'Close a month: build drafts from usage and (unless finalize=false) push them to Stripe. 409 while ingestion is incomplete, unless force.' })
  @ApiAnswer(CloseSummarySchema)
  @errorResponses(...ADMIN_ERRORS, 409)
  close(@ValidBody(closeBody) input: z.output<typeof closeBody>, @CurrentPrincipal() principal: Principal) {
    return closePeriod(this.closer, input, principal.keyId);
  }

  @Post('invoices/:id/finalize')
  @HttpCode(200)
  @ApiOperation({ summary: 'Push a draft to Stripe and finalize it (status sync_failed with the reason if Stripe keeps failing)' })
  @ApiAnswer(InvoiceSchema, 200, 'The invoice after the push (finalized, or sync_failed with sync_error)')
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  finalize(@ValidParam('id', idFilter) id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.finalize(id, principal.keyId));
  }

  @Post('invoices/:id/retry-sync')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a failed or interrupted Stripe push from its last stored step' })
  @ApiAnswer(InvoiceSchema, 200, 'The invoice after the push (finalized, or sync_failed with sync_error)')
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  retrySync(@ValidParam('id', idFilter) id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.retrySync(id, principal.keyId));
  }

  @Post('invoices/:id/void')
  @HttpCode(200)
  @ApiOperation({ summary: 'Void an invoice (in Stripe too once finalized there); its usage is not billed again' })
  @ApiAnswer(InvoiceSchema, 200, 'The voided invoice')
  @errorResponses(...ADMIN_ERRORS, 404, 409, 502)
  void(@ValidParam('id', idFilter) id: string, @CurrentPrincipal() principal: Principal) {
    return this.act(id, () => this.sync.void(id, principal.keyId));
  }

  @Get('reconciliation')
  @ApiOperation({ summary: 'Per account: raw events vs rollups (must agree exactly), invoice header vs lines vs claimed events, Stripe total' })
  @ApiAnswer(ReconciliationSchema)
  @errorResponses(...ADMIN_ERRORS)
  reconcile(@ValidQuery(reconcileQuery) q: z.output<typeof reconcileQuery>) {
    return reconcilePeriod(this.reconciliation, q);
  }

  /** The action audits itself, in its own transaction; the answer is the invoice as it left it. */
  private async act(id: string, fn: () => Promise<unknown>): Promise<InvoiceJson> {
    await fn();
    const after = (await this.invoices.getInvoiceWithLines(id))!;
    return invoiceJson(after.invoice, after.lines, { admin: true });
  }
}

// The dashboard's invoice pages validate with these very schemas.
export { closeBody, reconcileQuery };
