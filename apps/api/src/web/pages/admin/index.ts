import { AdminAccountsController } from './accounts.controller';
import { AdminAuditController } from './audit.controller';
import { AdminEventsController } from './events.controller';
import { AdminIngestAuditController } from './ingest-audit.controller';
import { AdminInvoicesPagesController } from './invoices.controller';
import { AdminKeysController } from './keys.controller';
import { AdminPriceImportController } from './price-import.controller';
import { AdminPricesController } from './prices.controller';
import { AdminRepriceController } from './reprice.controller';

/** The admin pages under /app/admin (registered by WebModule). */
export const ADMIN_PAGE_CONTROLLERS = [
  AdminAccountsController,
  AdminEventsController,
  AdminIngestAuditController,
  AdminPricesController,
  AdminPriceImportController,
  AdminRepriceController,
  AdminInvoicesPagesController,
  AdminAuditController,
  AdminKeysController,
];
