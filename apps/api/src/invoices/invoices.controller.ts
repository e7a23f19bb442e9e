import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { INVOICE_STATUSES, parsePeriod, type InvoiceStatus } from '@tokenmeter/billing';
import { InvoicesRepository } from '@tokenmeter/db';
import { ApiError } from '../common/api-error';
import { CurrentPrincipal, Roles, scopeAccount, seesAllAccounts, type Principal } from '../auth/principal';
import { invoiceJson } from './invoice-json';
import { mapInvoicingErrors } from './invoice-errors';

@ApiTags('invoices')
@ApiBearerAuth()
@Controller('v1/invoices')
export class InvoicesController {
  constructor(@Inject(InvoicesRepository) private readonly invoices: InvoicesRepository) {}

  @Get()
  @Roles('account', 'admin')
  @ApiOperation({ summary: "An account's invoices, newest period first (admins name the account with account_id)" })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query('account_id') accountId?: string,
    @Query('period') period?: string,
    @Query('status') status?: string,
  ) {
    const account = scopeAccount(principal, accountId);
    if (period !== undefined) await mapInvoicingErrors(async () => parsePeriod(period));
    if (status !== undefined && !INVOICE_STATUSES.includes(status as InvoiceStatus)) {
      throw new ApiError(400, 'validation_failed', `status: must be one of ${INVOICE_STATUSES.join(', ')}`, { field: 'status' });
    }
    const rows = await this.invoices.listInvoices({ accountId: account, period, statuses: status ? [status] : undefined, limit: 240 });
    return { data: rows.map((r) => invoiceJson(r, null, { admin: seesAllAccounts(principal) })) };
  }

  @Get(':id')
  @Roles('account', 'admin')
  @ApiOperation({ summary: 'One invoice with its lines; another account\'s invoice answers 404' })
  async get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    const invoice = await this.invoices.getInvoice(id);
    // Same answer for "does not exist" and "not yours": keys cannot probe other accounts' ids.
    if (!invoice || (!seesAllAccounts(principal) && invoice.accountId !== principal.accountId)) {
      throw new ApiError(404, 'not_found', `invoice ${id} not found`);
    }
    return invoiceJson(invoice, await this.invoices.listLines(id), { admin: seesAllAccounts(principal) });
  }
}
