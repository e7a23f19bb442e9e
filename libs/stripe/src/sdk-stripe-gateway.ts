import pLimit from 'p-limit';
import Stripe from 'stripe';
import {
  StripeCallError,
  WebhookSignatureError,
  type CreateCustomerParams,
  type CreateInvoiceItemParams,
  type CreateInvoiceParams,
  type StripeGateway,
  type InvoiceLineParams,
  type StripeInvoiceLineSummary,
  type StripeInvoiceResult,
  type StripeInvoiceSummary,
  type StripeWebhookEvent,
} from './stripe-gateway';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from './retries';

export interface StripeClientOptions {
  apiKey: string;
  /** e.g. https://api.stripe.com or http://127.0.0.1:12111 (stripe-mock) */
  apiBase: string;
  webhookSecret: string;
  /** Requests in flight at once through this gateway. */
  maxInFlight: number;
  retry?: RetryPolicy;
  timeoutMs?: number;
  /** Lines per add_lines request (default and most: MAX_LINES_PER_ADD_LINES_CALL). */
  maxLinesPerCall?: number;
}

/** The most lines Tokenmeter sends in one add_lines request. */
export const MAX_LINES_PER_ADD_LINES_CALL = 100;

/**
 * THE place that constructs the Stripe client. The SDK's own retries are off
 * (maxNetworkRetries: 0): retries happen here, with one policy, one backoff and one count,
 * and every POST carries our idempotency key so a retry can never create a second object.
 */
export class SdkStripeGateway implements StripeGateway {
  private readonly stripe: Stripe;
  private readonly limit: pLimit.Limit;
  private readonly retry: RetryPolicy;
  private requests = 0;
  readonly maxLinesPerCall: number;

  constructor(private readonly options: StripeClientOptions) {
    const base = new URL(options.apiBase);
    const protocol = base.protocol === 'http:' ? 'http' : 'https';
    this.stripe = new Stripe(options.apiKey, {
      host: base.hostname,
      port: base.port ? Number(base.port) : protocol === 'http' ? 80 : 443,
      protocol,
      maxNetworkRetries: 0,
      timeout: options.timeoutMs ?? 30_000,
      telemetry: false,
      appInfo: { name: 'tokenmeter' },
    });
    this.limit = pLimit(options.maxInFlight);
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.maxLinesPerCall = Math.min(options.maxLinesPerCall ?? MAX_LINES_PER_ADD_LINES_CALL, MAX_LINES_PER_ADD_LINES_CALL);
  }

  get requestCount(): number {
    return this.requests;
  }

  createCustomer(params: CreateCustomerParams, idempotencyKey: string): Promise<{ id: string }> {
    return this.call('customers.create', async () => {
      const c = await this.stripe.customers.create(
        {
          name: params.name ?? undefined,
          email: params.email ?? undefined,
          metadata: { account_id: params.accountId },
        },
        { idempotencyKey },
      );
      return { id: c.id };
    });
  }

  createInvoice(params: CreateInvoiceParams, idempotencyKey: string): Promise<{ id: string }> {
    return this.call('invoices.create', async () => {
      const inv = await this.stripe.invoices.create(
        {
          customer: params.customerId,
          currency: 'usd',
          // We finalize explicitly once every item is attached; Stripe must not do it on its own.
          auto_advance: false,
          // Only the items we attach by invoice id belong on it: pending items for the customer
          // (from anything else) must never be swept onto a usage invoice.
          pending_invoice_items_behavior: 'exclude',
          collection_method: 'send_invoice',
          days_until_due: 30,
          description: params.description,
          metadata: params.metadata,
        },
        { idempotencyKey },
      );
      return { id: inv.id! };
    });
  }

  createInvoiceItem(params: CreateInvoiceItemParams, idempotencyKey: string): Promise<{ id: string }> {
    const amount = Number(params.amountMinor);
    if (!Number.isSafeInteger(amount)) throw new RangeError(`amount ${params.amountMinor} cents is not a safe integer`);
    return this.call('invoiceItems.create', async () => {
      const item = await this.stripe.invoiceItems.create(
        {
          customer: params.customerId,
          invoice: params.stripeInvoiceId,
          amount,
          currency: params.currency,
          description: params.description,
          period: params.period && {
            start: Math.floor(params.period.start.getTime() / 1000),
            end: Math.floor(params.period.end.getTime() / 1000),
          },
          metadata: params.metadata,
        },
        { idempotencyKey },
      );
      return { id: item.id };
    });
  }

  addInvoiceLines(stripeInvoiceId: string, lines: InvoiceLineParams[], idempotencyKey: string): Promise<void> {
    if (lines.length === 0 || lines.length > this.maxLinesPerCall) {
      throw new RangeError(`add_lines takes 1..${this.maxLinesPerCall} lines, not ${lines.length}`);
    }
    const params = lines.map((line) => {
      const amount = Number(line.amountMinor);
      if (!Number.isSafeInteger(amount)) throw new RangeError(`amount ${line.amountMinor} cents is not a safe integer`);
      return {
        amount,
        description: line.description,
        period: { start: Math.floor(line.period.start.getTime() / 1000), end: Math.floor(line.period.end.getTime() / 1000) },
        metadata: line.metadata,
      };
    });
    return this.call('invoices.addLines', async () => {
      await this.stripe.invoices.addLines(stripeInvoiceId, { lines: params }, { idempotencyKey });
    });
  }

  finalizeInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult> {
    return this.call('invoices.finalizeInvoice', async () =>
      toResult(await this.stripe.invoices.finalizeInvoice(stripeInvoiceId, { auto_advance: false }, { idempotencyKey })),
    );
  }

  voidInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult> {
    return this.call('invoices.voidInvoice', async () =>
      toResult(await this.stripe.invoices.voidInvoice(stripeInvoiceId, {}, { idempotencyKey })),
    );
  }

  retrieveInvoice(stripeInvoiceId: string): Promise<StripeInvoiceResult> {
    return this.call('invoices.retrieve', async () => toResult(await this.stripe.invoices.retrieve(stripeInvoiceId)));
  }

  getCustomerByAccountId(accountId: string): Promise<{ id: string } | undefined> {
    return this.call('customers.search', async () => {
      const found = await this.stripe.customers
        .search({ query: `metadata['account_id']:'${searchString(accountId)}'`, limit: 100 })
        .autoPagingToArray({ limit: 1000 });
      // Search matches loosely; the metadata must be exactly ours. The oldest one if there are several.
      const ours = found.filter((c) => c.metadata?.account_id === accountId).sort((a, b) => a.created - b.created);
      return ours[0] ? { id: ours[0].id } : undefined;
    });
  }

  listInvoices(customerId: string, createdSince: Date): Promise<StripeInvoiceSummary[]> {
    return this.call('invoices.list', async () => {
      const invoices = await this.stripe.invoices
        .list({ customer: customerId, created: { gte: Math.floor(createdSince.getTime() / 1000) }, limit: 100 })
        .autoPagingToArray({ limit: 10_000 });
      return invoices.map((inv) => ({ ...toResult(inv), metadata: { ...(inv.metadata ?? {}) } }));
    });
  }

  listInvoiceLines(stripeInvoiceId: string): Promise<StripeInvoiceLineSummary[]> {
    return this.call('invoices.listLineItems', async () => {
      const lines = await this.stripe.invoices.listLineItems(stripeInvoiceId, { limit: 100 }).autoPagingToArray({ limit: 10_000 });
      return lines.map((line) => ({ id: line.id, amountMinor: BigInt(line.amount), metadata: { ...(line.metadata ?? {}) } }));
    });
  }

  verifyWebhook(rawBody: Buffer | string, signatureHeader: string | undefined): StripeWebhookEvent {
    if (!signatureHeader) throw new WebhookSignatureError('missing Stripe-Signature header');
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(rawBody, signatureHeader, this.options.webhookSecret);
    } catch (err) {
      throw new WebhookSignatureError(err instanceof Error ? err.message : String(err));
    }
    return { id: event.id, type: event.type, object: event.data.object as unknown as StripeWebhookEvent['object'] };
  }

  /** Test helper: a valid Stripe-Signature header for `payload` with this gateway's secret. */
  signWebhookPayload(payload: string): string {
    return this.stripe.webhooks.generateTestHeaderString({ payload, secret: this.options.webhookSecret });
  }

  private call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return this.limit(() =>
      withRetries(
        () => {
          this.requests++;
          return fn();
        },
        isRetriableStripeError,
        this.retry,
      ).catch((err: unknown) => {
        throw toCallError(operation, err);
      }),
    );
  }
}

function toResult(inv: Stripe.Invoice): StripeInvoiceResult {
  return { id: inv.id!, status: inv.status ?? null, totalMinor: BigInt(inv.total), hostedInvoiceUrl: inv.hosted_invoice_url ?? null };
}

/** A value inside single quotes in Stripe's search query language. */
function searchString(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

/** 429, 5xx, connection problems and Stripe's "concurrent request with this key" 409 are worth retrying. */
export function isRetriableStripeError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { type?: string; statusCode?: number; code?: string };
  if (e.type === 'StripeConnectionError' || e.type === 'StripeRateLimitError' || e.type === 'StripeAPIError') return true;
  if (e.statusCode === 409) return e.code === 'idempotency_key_in_use' || e.code === 'lock_timeout';
  if (typeof e.statusCode === 'number') return e.statusCode === 429 || e.statusCode >= 500;
  return ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE'].includes(e.code ?? '');
}

function toCallError(operation: string, err: unknown): StripeCallError {
  if (err instanceof StripeCallError) return err;
  const e = err as { statusCode?: number; message?: string; code?: string };
  return new StripeCallError(operation, isRetriableStripeError(err), e?.statusCode, `${e?.code ? `${e.code}: ` : ''}${e?.message ?? String(err)}`);
}
