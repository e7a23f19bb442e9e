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
} from '@tokenmeter/stripe';

/**
 * An in-memory Stripe behind the StripeGateway interface, for the one fault stripe-mock cannot
 * produce: Stripe FORGETTING idempotency keys (it keeps them 24 hours). stripe-mock stores
 * nothing and ignores keys; this fake stores every object it creates (so a test can count
 * customers, invoices and items and read real totals), replays a key's first answer like Stripe
 * until forgetIdempotencyKeys() (= 24 hours later), and fails calls on demand, before or after
 * "Stripe" did the work. It applies the Stripe rules a resumed push runs into: items and lines
 * only on a draft invoice (items: of the same customer), at most maxLinesPerCall lines per
 * add_lines call, applied whole; finalize only a draft, void only an open invoice.
 *
 * Operation names are the SDK gateway's (`invoices.addLines`, ...), so errors read the same.
 */
export type FakeOperation =
  | 'customers.create'
  | 'invoices.create'
  | 'invoiceItems.create'
  | 'invoices.addLines'
  | 'invoices.finalizeInvoice'
  | 'invoices.voidInvoice';

export interface FakeFault {
  operation: FakeOperation;
  /** before: the call never reached Stripe. after: Stripe did it and the answer was lost. */
  when: 'before' | 'after';
  /** Which calls it hits (default: every call of the operation). */
  match?: (params: Record<string, unknown>) => boolean;
  /** Matching calls let through before the fault starts. */
  skip?: number;
  /** Matching calls that fail; Infinity until cleared. */
  times: number;
}

export interface FakeCustomer {
  id: string;
  created: number;
  metadata: Record<string, string>;
}

export interface FakeInvoice {
  id: string;
  customer: string;
  created: number;
  status: 'draft' | 'open' | 'void';
  metadata: Record<string, string>;
  totalMinor: bigint | null;
}

export interface FakeItem {
  id: string;
  customer: string;
  invoice: string;
  amountMinor: bigint;
  description: string;
  metadata: Record<string, string>;
}

export class FakeStripe implements StripeGateway {
  readonly customers = new Map<string, FakeCustomer>();
  readonly invoices = new Map<string, FakeInvoice>();
  readonly items = new Map<string, FakeItem>();
  /** Every call, lookups included, in order. */
  readonly calls: string[] = [];
  /** Every mutating call that got past injected 'before' faults, with its key and whether it was replayed. */
  readonly requests: { operation: FakeOperation; idempotencyKey: string; replayed: boolean }[] = [];
  private readonly keys = new Map<string, { params: string; result: unknown }>();
  private faults: (FakeFault & { seen: number })[] = [];
  private seq = 0;

  /** maxLinesPerCall: small in tests, so that a handful of lines takes several add_lines calls. */
  constructor(readonly maxLinesPerCall = 100) {}

  get requestCount(): number {
    return this.calls.length;
  }

  /** What Stripe does 24 hours after a request: the key is gone, a repeat creates anew. */
  forgetIdempotencyKeys(): void {
    this.keys.clear();
  }

  inject(fault: FakeFault): void {
    this.faults.push({ ...fault, seen: 0 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  createCustomer(params: CreateCustomerParams, idempotencyKey: string): Promise<{ id: string }> {
    return this.mutate('customers.create', { ...params }, idempotencyKey, () => {
      const customer = { id: this.newId('cus'), created: this.seq, metadata: { account_id: params.accountId } };
      this.customers.set(customer.id, customer);
      return { id: customer.id };
    });
  }

  createInvoice(params: CreateInvoiceParams, idempotencyKey: string): Promise<{ id: string }> {
    return this.mutate('invoices.create', { ...params }, idempotencyKey, () => {
      if (!this.customers.has(params.customerId)) throw refused('invoices.create', `No such customer: '${params.customerId}'`);
      const invoice: FakeInvoice = { id: this.newId('in'), customer: params.customerId, created: Date.now(), status: 'draft', metadata: { ...params.metadata }, totalMinor: null };
      this.invoices.set(invoice.id, invoice);
      return { id: invoice.id };
    });
  }

  createInvoiceItem(params: CreateInvoiceItemParams, idempotencyKey: string): Promise<{ id: string }> {
    return this.mutate('invoiceItems.create', { ...params }, idempotencyKey, () => {
      const invoice = this.invoices.get(params.stripeInvoiceId);
      if (!invoice) throw refused('invoiceItems.create', `No such invoice: '${params.stripeInvoiceId}'`);
      if (invoice.customer !== params.customerId) throw refused('invoiceItems.create', 'the invoice belongs to another customer');
      if (invoice.status !== 'draft') throw refused('invoiceItems.create', `invoice ${invoice.id} is ${invoice.status}, items can only be added to a draft`);
      return { id: this.addItem(invoice.customer, invoice.id, params).id };
    });
  }

  /** Fault matchers see { stripeInvoiceId, lines }; each line's metadata is ours. */
  addInvoiceLines(stripeInvoiceId: string, lines: InvoiceLineParams[], idempotencyKey: string): Promise<void> {
    return this.mutate('invoices.addLines', { stripeInvoiceId, lines }, idempotencyKey, () => {
      const invoice = this.invoiceOrRefuse('invoices.addLines', stripeInvoiceId);
      if (invoice.status !== 'draft') throw refused('invoices.addLines', `invoice ${invoice.id} is ${invoice.status}, lines can only be added to a draft`);
      if (lines.length === 0 || lines.length > this.maxLinesPerCall) throw refused('invoices.addLines', `lines: 1..${this.maxLinesPerCall}, got ${lines.length}`);
      for (const line of lines) this.addItem(invoice.customer, invoice.id, line);
    });
  }

  private addItem(customer: string, invoice: string, line: { amountMinor: bigint; description: string; metadata: Record<string, string> }): FakeItem {
    const item: FakeItem = { id: this.newId('ii'), customer, invoice, amountMinor: line.amountMinor, description: line.description, metadata: { ...line.metadata } };
    this.items.set(item.id, item);
    return item;
  }

  finalizeInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult> {
    return this.mutate('invoices.finalizeInvoice', { stripeInvoiceId }, idempotencyKey, () => {
      const invoice = this.invoiceOrRefuse('invoices.finalizeInvoice', stripeInvoiceId);
      if (invoice.status !== 'draft') throw refused('invoices.finalizeInvoice', `invoice ${invoice.id} is already finalized`);
      invoice.status = 'open';
      invoice.totalMinor = this.itemsOf(invoice.id).reduce((sum, i) => sum + i.amountMinor, 0n);
      return this.result(invoice);
    });
  }

  voidInvoice(stripeInvoiceId: string, idempotencyKey: string): Promise<StripeInvoiceResult> {
    return this.mutate('invoices.voidInvoice', { stripeInvoiceId }, idempotencyKey, () => {
      const invoice = this.invoiceOrRefuse('invoices.voidInvoice', stripeInvoiceId);
      if (invoice.status !== 'open') throw refused('invoices.voidInvoice', `invoice ${invoice.id} is ${invoice.status}, only an open invoice can be voided`);
      invoice.status = 'void';
      return this.result(invoice);
    });
  }

  async retrieveInvoice(stripeInvoiceId: string): Promise<StripeInvoiceResult> {
    this.calls.push('invoices.retrieve');
    return this.result(this.invoiceOrRefuse('invoices.retrieve', stripeInvoiceId));
  }

  async getCustomerByAccountId(accountId: string): Promise<{ id: string } | undefined> {
    this.calls.push('customers.search');
    const ours = [...this.customers.values()].filter((c) => c.metadata.account_id === accountId).sort((a, b) => a.created - b.created);
    return ours[0] ? { id: ours[0].id } : undefined;
  }

  async listInvoices(customerId: string, createdSince: Date): Promise<StripeInvoiceSummary[]> {
    this.calls.push('invoices.list');
    return [...this.invoices.values()]
      .filter((i) => i.customer === customerId && i.created >= createdSince.getTime())
      .map((i) => ({ ...this.result(i), metadata: { ...i.metadata } }));
  }

  async listInvoiceLines(stripeInvoiceId: string): Promise<StripeInvoiceLineSummary[]> {
    this.calls.push('invoices.listLineItems');
    return this.itemsOf(this.invoiceOrRefuse('invoices.listLineItems', stripeInvoiceId).id).map((i) => ({
      id: `il_${i.id}`,
      amountMinor: i.amountMinor,
      metadata: { ...i.metadata },
    }));
  }

  verifyWebhook(): StripeWebhookEvent {
    throw new WebhookSignatureError('the fake Stripe does not sign webhooks');
  }

  /** Customers, invoices and items "in Stripe" for one account (by the metadata we set). */
  objectsOf(accountId: string): { customers: FakeCustomer[]; invoices: FakeInvoice[]; items: FakeItem[] } {
    const customers = [...this.customers.values()].filter((c) => c.metadata.account_id === accountId);
    const ids = new Set(customers.map((c) => c.id));
    const invoices = [...this.invoices.values()].filter((i) => ids.has(i.customer));
    const items = [...this.items.values()].filter((i) => ids.has(i.customer));
    return { customers, invoices, items };
  }

  itemsOf(stripeInvoiceId: string): FakeItem[] {
    return [...this.items.values()].filter((i) => i.invoice === stripeInvoiceId);
  }

  private async mutate<T>(operation: FakeOperation, params: Record<string, unknown>, key: string, apply: () => T): Promise<T> {
    this.calls.push(operation);
    const fault = this.takeFault(operation, params);
    if (fault?.when === 'before') throw lost(operation, 'injected: Stripe unreachable, the request never arrived');
    const serialised = JSON.stringify(params, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const prior = this.keys.get(key);
    let result: T;
    this.requests.push({ operation, idempotencyKey: key, replayed: prior !== undefined });
    if (prior) {
      if (prior.params !== serialised) throw refused(operation, `Keys for idempotent requests can only be used with the same parameters (${key})`);
      result = prior.result as T;
    } else {
      result = apply();
      this.keys.set(key, { params: serialised, result });
    }
    if (fault?.when === 'after') throw lost(operation, 'injected: connection lost after Stripe processed the request');
    return result;
  }

  private takeFault(operation: FakeOperation, params: Record<string, unknown>): FakeFault | undefined {
    for (const f of this.faults) {
      if (f.operation !== operation || f.times <= 0 || (f.match && !f.match(params))) continue;
      if (f.seen++ < (f.skip ?? 0)) continue;
      f.times--;
      return f;
    }
    return undefined;
  }

  private invoiceOrRefuse(operation: string, id: string): FakeInvoice {
    const invoice = this.invoices.get(id);
    if (!invoice) throw new StripeCallError(operation, false, 404, `resource_missing: No such invoice: '${id}'`);
    return invoice;
  }

  private result(invoice: FakeInvoice): StripeInvoiceResult {
    return {
      id: invoice.id,
      status: invoice.status,
      totalMinor: invoice.totalMinor ?? this.itemsOf(invoice.id).reduce((sum, i) => sum + i.amountMinor, 0n),
      hostedInvoiceUrl: invoice.status === 'draft' ? null : `https://invoice.stripe.test/${invoice.id}`,
    };
  }

  private newId(prefix: string): string {
    return `${prefix}_fake${String(++this.seq).padStart(6, '0')}`;
  }
}

const refused = (operation: string, message: string) => new StripeCallError(operation, false, 400, `invalid_request_error: ${message}`);
const lost = (operation: string, message: string) => new StripeCallError(operation, true, undefined, `ECONNRESET: ${message}`);
