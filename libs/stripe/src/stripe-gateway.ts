/**
 * What Tokenmeter needs from Stripe, as plain data. The invoicing services depend on this
 * interface only; `SdkStripeGateway` is the one implementation that talks to Stripe (through the
 * official SDK), and tests can put a fake or a fault-injecting proxy behind it.
 *
 * Every mutating call takes an idempotency key derived from our own ids, so repeating a call
 * after a crash or a lost response returns the object Stripe already created. Stripe forgets a
 * key after 24 hours, so a push resumed later first looks for what it may have created by our
 * ids in metadata (getCustomerByAccountId, listInvoices, listInvoiceLines) and reuses it.
 */
export interface StripeInvoiceResult {
  id: string;
  status: string | null;
  totalMinor: bigint;
  hostedInvoiceUrl: string | null;
}

export interface CreateCustomerParams {
  accountId: string;
  name?: string | null;
  email?: string | null;
}

export interface CreateInvoiceParams {
  customerId: string;
  description: string;
  metadata: Record<string, string>;
}

export interface CreateInvoiceItemParams {
  customerId: string;
  stripeInvoiceId: string;
  /** Integer cents; negative for discount and credit lines. */
  amountMinor: bigint;
  currency: 'usd';
  description: string;
  /** The service period, shown by Stripe on the line; absent for a credit top-up (no usage behind it). */
  period?: { start: Date; end: Date };
  metadata: Record<string, string>;
}

/** One line for addInvoiceLines: Stripe creates an invoice item for it, on the (draft) invoice, in its currency. */
export interface InvoiceLineParams {
  /** Integer cents; negative for discount and credit lines. */
  amountMinor: bigint;
  description: string;
  /** The service period, shown by Stripe on the line. */
  period: { start: Date; end: Date };
  metadata: Record<string, string>;
}

/** An invoice as a list returns it: enough to recognise ours by metadata and resume it. */
export interface StripeInvoiceSummary extends StripeInvoiceResult {
  metadata: Record<string, string>;
}

/** A line of a Stripe invoice as its lines list returns it (metadata: what we set on the line). */
export interface StripeInvoiceLineSummary {
  id: string;
  /** Integer cents. */
  amountMinor: bigint;
  metadata: Record<string, string>;
}

export interface StripeWebhookEvent {
  id: string;
  type: string;
  /** data.object */
  object: { id?: string; object?: string; metadata?: Record<string, string> | null } & Record<string, unknown>;
}

export interface StripeGateway {
  createCustomer(params: CreateCustomerParams, idempotencyKey: string): Promise<{ id: string }>;
  createInvoice(params: CreateInvoiceParams, idempotencyKey: string): Promise<{ id: string }>;
  /** A single pending-then-attached item (credit top-ups); usage invoices use addInvoiceLines. */
  createInvoiceItem(params: CreateInvoiceItemParams, idempotencyKey: string): Promise<{ id: string }>;
  /**
   * Adds up to maxLinesPerCall lines to a draft invoice in one request (POST
   * /v1/invoices/{id}/add_lines). Stripe applies the call whole or not at all, so one key
   * covers the whole chunk.
   */
  addInvoiceLines(stripeInvoiceId: string, lines: InvoiceLineParams[], idempotencyKey: string): Promise<void>;
  /** The most lines one addInvoiceLines call may carry. */
  readonly maxLinesPerCall: number;
  finalizeInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult>;
  voidInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult>;
  retrieveInvoice(stripeInvoiceId: string): Promise<StripeInvoiceResult>;
  /**
   * The customer createCustomer made for this account (found by metadata account_id), if any.
   * Stripe's search is eventually consistent (a customer can take up to a minute to appear);
   * within that minute the idempotency key still covers a repeated create.
   */
  getCustomerByAccountId(accountId: string): Promise<{ id: string } | undefined>;
  /** The customer's invoices created at or after `createdSince`, any status but deleted. */
  listInvoices(customerId: string, createdSince: Date): Promise<StripeInvoiceSummary[]>;
  /** Every line of one invoice (GET /v1/invoices/{id}/lines, all pages). */
  listInvoiceLines(stripeInvoiceId: string): Promise<StripeInvoiceLineSummary[]>;
  /** Verifies the Stripe-Signature header against the raw body; throws WebhookSignatureError. */
  verifyWebhook(rawBody: Buffer | string, signatureHeader: string | undefined): StripeWebhookEvent;
  /** Requests sent to Stripe so far, retries included (for benchmarks and logs). */
  readonly requestCount: number;
}

export class WebhookSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookSignatureError';
  }
}

/** A Stripe call that failed for good (after retries, or not retriable). */
export class StripeCallError extends Error {
  constructor(
    readonly operation: string,
    readonly retriable: boolean,
    readonly statusCode: number | undefined,
    message: string,
  ) {
    super(`${operation}: ${message}`);
    this.name = 'StripeCallError';
  }
}
