import { Inject, Injectable } from '@nestjs/common';
import type { InvoiceStatus } from '@tokenmeter/billing';
import { InvoicesRepository, type InvoiceLineRow, type InvoiceRow } from '@tokenmeter/db';

/**
 * The read side of invoices for the API and the dashboard: controllers and pages ask this
 * service, never the repository (one owner per table; controllers only delegate).
 */
@Injectable()
export class InvoicesService {
  constructor(@Inject(InvoicesRepository) private readonly invoices: InvoicesRepository) {}

  /** Newest period first, without their lines. */
  listInvoices(filter: { accountId?: string; period?: string; statuses?: readonly InvoiceStatus[]; limit: number }): Promise<InvoiceRow[]> {
    return this.invoices.listInvoices(filter);
  }

  /**
   * One invoice and its lines, or undefined when it does not exist or (with `accountId`) belongs
   * to another account: callers answer both the same way, so ids cannot be probed.
   */
  async getInvoiceWithLines(id: string, accountId?: string): Promise<{ invoice: InvoiceRow; lines: InvoiceLineRow[] } | undefined> {
    const invoice = await this.invoices.getInvoice(id);
    if (!invoice || (accountId !== undefined && invoice.accountId !== accountId)) return undefined;
    return { invoice, lines: await this.invoices.listLines(id) };
  }

  getInvoice(id: string): Promise<InvoiceRow | undefined> {
    return this.invoices.getInvoice(id);
  }
}
