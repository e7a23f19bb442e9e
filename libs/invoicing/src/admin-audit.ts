import type { AuditEntry, InvoiceRow } from '@tokenmeter/db';

/**
 * An admin action on one invoice (finalize, retry-sync, void) and who asked for it: the service
 * doing the action writes its audit entry in the transaction that records the outcome.
 */
export interface InvoiceAdminAction {
  action: 'invoices.finalize' | 'invoices.retry_sync' | 'invoices.void';
  /** The API key that asked; null for the invoicer CLI. */
  actorKeyId: string | null;
  /** The invoice as the action found it. */
  before: InvoiceRow;
}

export function invoiceAuditEntry(action: InvoiceAdminAction, after: InvoiceRow): AuditEntry {
  return {
    actorKeyId: action.actorKeyId,
    action: action.action,
    targetType: 'invoice',
    targetId: after.id,
    before: { status: action.before.status, stripe_invoice_id: action.before.stripeInvoiceId },
    after: { status: after.status, stripe_invoice_id: after.stripeInvoiceId, sync_error: after.syncError },
    requestId: null,
  };
}
