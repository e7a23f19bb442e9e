import { createHash } from 'node:crypto';
import { canonicalHash, ConflictError, NotFoundError, toMinorUnits, usd, ValidationError } from '@tokenmeter/billing';
import {
  type AccountsRepository,
  type AuditLogRepository,
  type CreditGrantRecord,
  type CreditGrantsRepository,
  type CreditLedgerRepository,
  type Queryable,
  type Transactor,
} from '@tokenmeter/db';
import type { StripeGateway, StripeInvoiceResult } from '@tokenmeter/stripe';
import { idempotencyKeys } from './sync.service';

export interface TopUpRequest {
  /** USD in whole cents (it is sold as one Stripe invoice item). */
  amountUsd: string;
  idempotencyKey: string;
  effectiveAt?: Date;
  expiresAt?: Date | null;
  priority?: number;
  models?: string[];
}

export interface TopUpResult {
  grant: CreditGrantRecord;
  /** false: the same idempotency key and terms were sent before (the same grant, its push resumed). */
  created: boolean;
  stripeInvoice: StripeInvoiceResult;
}

/**
 * A paid top-up sold as its own Stripe invoice (docs/credits.md, "Paid top-ups"). The grant is
 * `pending_payment`, with no ledger entry, until Stripe's invoice.paid for that invoice arrives
 * (activate): then it becomes `active` and gets its `grant` entry, once.
 *
 * Steps, each with a key derived from (account, idempotency key), so a retry of the same request
 * after a crash at any point replays Stripe's answers (within Stripe's 24 hours) and ends with one
 * customer, one invoice, one item and one grant:
 *
 *   1. customer          cus-<account>        (the same customer as the usage invoices)
 *   2. Stripe invoice    topup-inv-<h>        (metadata tokenmeter_grant_id, account_id)
 *   3. one item          topup-ii-<h>         (the amount in cents, no period)
 *   4. the grant         pending_payment, stripe_invoice_id set at creation (a grant never changes
 *                        afterwards except its status), with its audit entry, in one transaction
 *   5. finalize          topup-fin-<h>        (only after the grant exists: nobody can pay an
 *                        invoice whose grant we have not stored)
 *
 * The grant id is derived from the same hash, so the grant a retry creates is the one the Stripe
 * invoice's metadata names.
 */
export class CreditTopUpService {
  constructor(
    private readonly grants: CreditGrantsRepository,
    private readonly ledger: CreditLedgerRepository,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
    private readonly stripe: StripeGateway,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(accountId: string, req: TopUpRequest, actor: { keyId: string | null; requestId: string | null }): Promise<TopUpResult> {
    const amount = usd(req.amountUsd);
    if (!amount.gt(0) || amount.decimalPlaces() > 2) throw new ValidationError('amount_usd', 'must be a positive amount in whole cents, e.g. "100.00"');
    const terms = {
      kind: 'credit_top_up',
      amount_usd: amount.toFixed(2),
      effective_at: req.effectiveAt?.toISOString() ?? null,
      expires_at: req.expiresAt?.toISOString() ?? null,
      priority: req.priority ?? 0,
      models: [...new Set(req.models ?? [])].sort(),
    };
    const requestHash = canonicalHash(terms);
    const existing = await this.grants.getGrantByIdempotencyKey(accountId, req.idempotencyKey);
    if (existing && existing.requestHash !== requestHash) {
      throw new ConflictError(`idempotency_key ${req.idempotencyKey} was used for a grant with other terms`);
    }
    const account = await this.accounts.getAccount(accountId);
    if (!account) throw new NotFoundError('account', accountId);

    const h = createHash('sha256').update(`${accountId}\u0000${req.idempotencyKey}`).digest('hex').slice(0, 32);
    const grantId = existing?.id ?? `grt_${h.slice(0, 24)}`;
    const customerId = (await this.accounts.getStripeCustomerId(accountId)) ?? (await this.createCustomer(accountId, account.name, account.email));
    const stripeInvoiceId =
      existing?.stripeInvoiceId ??
      (
        await this.stripe.createInvoice(
          {
            customerId,
            description: `Tokenmeter prepaid credits, $${terms.amount_usd}`,
            metadata: { tokenmeter_grant_id: grantId, account_id: accountId, kind: 'credit_top_up' },
          },
          `topup-inv-${h}`,
        )
      ).id;
    let grant = existing;
    let created = false;
    if (!grant) {
      await this.stripe.createInvoiceItem(
        {
          customerId,
          stripeInvoiceId,
          amountMinor: toMinorUnits(amount),
          currency: 'usd',
          description: `Prepaid credit ${grantId}`,
          metadata: { tokenmeter_grant_id: grantId, account_id: accountId, amount_usd: terms.amount_usd },
        },
        `topup-ii-${h}`,
      );
      ({ grant, created } = await this.storeGrant(accountId, grantId, stripeInvoiceId, req, terms.amount_usd, requestHash, actor));
    }
    const current = existing ? await this.stripe.retrieveInvoice(stripeInvoiceId) : undefined;
    const stripeInvoice = current && current.status !== 'draft' ? current : await this.stripe.finalizeInvoice(stripeInvoiceId, `topup-fin-${h}`);
    return { grant, created, stripeInvoice };
  }

  /**
   * invoice.paid for a top-up's Stripe invoice, in the webhook's transaction: the grant becomes
   * active with its `grant` ledger entry. undefined when the invoice is no top-up; the grant as it
   * is when it is not pending any more (a second delivery, or another event type got there first).
   */
  async activate(stripeInvoiceId: string, q: Queryable): Promise<{ grant: CreditGrantRecord; moved: boolean } | undefined> {
    const grant = await this.grants.getGrantByStripeInvoiceId(stripeInvoiceId, q);
    if (!grant) return undefined;
    const moved = await this.grants.moveStatus(grant.id, 'pending_payment', 'active', q);
    if (!moved) return { grant, moved: false };
    await this.ledger.append([{ accountId: moved.accountId, grantId: moved.id, kind: 'grant', amountUsd: moved.amountUsd }], q);
    await this.grants.notifyGrantsChanged(moved.accountId, q);
    return { grant: moved, moved: true };
  }

  /** invoice.voided for a top-up not paid: the grant is voided (it never had a ledger entry). */
  async cancel(stripeInvoiceId: string, q: Queryable): Promise<{ grant: CreditGrantRecord; moved: boolean } | undefined> {
    const grant = await this.grants.getGrantByStripeInvoiceId(stripeInvoiceId, q);
    if (!grant) return undefined;
    const moved = await this.grants.moveStatus(grant.id, 'pending_payment', 'voided', q);
    if (moved) await this.grants.notifyGrantsChanged(moved.accountId, q);
    return { grant: moved ?? grant, moved: moved !== undefined };
  }

  private async createCustomer(accountId: string, name: string | null, email: string | null): Promise<string> {
    const c = await this.stripe.createCustomer({ accountId, name, email }, idempotencyKeys.customer(accountId));
    return this.accounts.setStripeCustomerId(accountId, c.id);
  }

  private async storeGrant(
    accountId: string,
    grantId: string,
    stripeInvoiceId: string,
    req: TopUpRequest,
    amountUsd: string,
    requestHash: string,
    actor: { keyId: string | null; requestId: string | null },
  ): Promise<{ grant: CreditGrantRecord; created: boolean }> {
    try {
      const grant = await this.transactor.run(async (q) => {
        const g = await this.grants.createGrant(
          {
            id: grantId,
            accountId,
            amountUsd,
            category: 'paid',
            priority: req.priority ?? 0,
            effectiveAt: req.effectiveAt ?? this.clock(),
            expiresAt: req.expiresAt ?? null,
            models: [...new Set(req.models ?? [])].sort(),
            idempotencyKey: req.idempotencyKey,
            requestHash,
            status: 'pending_payment',
            stripeInvoiceId,
          },
          q,
        );
        await this.audit.append(
          {
            actorKeyId: actor.keyId,
            action: 'credits.top_up',
            targetType: 'credit_grant',
            targetId: g.id,
            before: null,
            after: { account_id: accountId, amount_usd: amountUsd, status: g.status, stripe_invoice_id: stripeInvoiceId },
            requestId: actor.requestId,
          },
          q,
        );
        return g;
      });
      return { grant, created: true };
    } catch (err) {
      // The same request twice at once: the other one stored it (Prisma's P2002 or pg's 23505).
      const grant = await this.grants.getGrant(grantId);
      if (!grant || grant.requestHash !== requestHash) throw err;
      return { grant, created: false };
    }
  }
}
