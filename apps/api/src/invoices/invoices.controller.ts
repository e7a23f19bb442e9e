import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { INVOICE_STATUSES, type InvoiceStatus } from '@tokenmeter/billing';
import { ApiError } from '../common/api-error';
import { ApiAnswer } from '../common/openapi';
import { CurrentPrincipal, Roles, scopeAccount, seesAllAccounts, type Principal } from '../auth/principal';
import { idFilter, period, ValidParam, ValidQuery } from '../common/validation';
import { InvoicesService } from './invoices.service';
import { type InvoiceJson, InvoiceListSchema, InvoiceSchema, invoiceJson } from './invoice-json';

const listQuery = z.object({
  account_id: idFilter.optional().describe('Admin keys only (required for them): the account to read'),
  period: period.optional(),
  status: z.enum(INVOICE_STATUSES as [InvoiceStatus, ...InvoiceStatus[]], { errorMap: () => ({ message: `must be one of ${INVOICE_STATUSES.join(', ')}` }) }).optional(),
});

/** At most this many invoices in a list: 20 years of months. The dashboard's invoice list shows as many. */
export const INVOICE_LIST_LIMIT = 240;

/**
 * One invoice with its lines, or the route's 404. `accountId` undefined: any account's invoice.
 * Same answer for "does not exist" and "not yours": keys cannot probe other accounts' ids.
 * The dashboard's invoice page reads through this too.
 */
export async function getInvoiceOrFail(invoices: InvoicesService, id: string, accountId: string | undefined, opts: { admin: boolean }): Promise<InvoiceJson> {
  const found = await invoices.getInvoiceWithLines(id, accountId);
  if (!found) throw new ApiError(404, 'not_found', `invoice ${id} not found`);
  return invoiceJson(found.invoice, found.lines, opts);
}

@ApiTags('invoices')
@ApiBearerAuth()
@Controller('v1/invoices')
export class InvoicesController {
  constructor(private readonly invoices: InvoicesService) {}

  @Get()
  @Roles('account', 'admin')
  @ApiOperation({ summary: "An account's invoices, newest period first (admins name the account with account_id)" })
  @ApiAnswer(InvoiceListSchema, 200, 'At most 240 invoices (20 years of months), without their lines; sync_error and sync_attempts for admin keys only')
  async list(@CurrentPrincipal() principal: Principal, @ValidQuery(listQuery) q: z.output<typeof listQuery>) {
    const account = scopeAccount(principal, q.account_id);
    const statuses = q.status ? [q.status] : undefined;
    const rows = await this.invoices.listInvoices({ accountId: account, period: q.period, statuses, limit: INVOICE_LIST_LIMIT });
    return { data: rows.map((r) => invoiceJson(r, null, { admin: seesAllAccounts(principal) })) };
  }

  @Get(':id')
  @Roles('account', 'admin')
  @ApiOperation({ summary: 'One invoice with its lines; another account\'s invoice answers 404' })
  @ApiAnswer(InvoiceSchema, 200, 'sync_error and sync_attempts for admin keys only')
  get(@CurrentPrincipal() principal: Principal, @ValidParam('id', idFilter) id: string) {
    const admin = seesAllAccounts(principal);
    return getInvoiceOrFail(this.invoices, id, admin ? undefined : principal.accountId!, { admin });
  }
}
