import { InvoicesPagesController } from './invoices.controller';
import { RequestsPagesController } from './requests.controller';
import { UsagePagesController } from './usage.controller';

/** The account pages (usage, requests, invoices), registered in WebModule as one entry. */
export const ACCOUNT_PAGE_CONTROLLERS = [UsagePagesController, RequestsPagesController, InvoicesPagesController];
