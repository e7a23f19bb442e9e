import type { Pool } from 'pg';
import type { CreditCategory, CreditGrantTerms } from '@tokenmeter/billing';
import type { CreditGrant } from './generated/prisma/client';
import { prismaFor, type Queryable } from './transactor';

/**
 * credit_grants (docs/credits.md, "Model"). A grant never changes after creation except its
 * `status` (pending_payment -> active when its top-up is paid; active -> voided) and `voided_at`.
 * Its balance is credit-ledger.repository's.
 */
export type CreditGrantStatus = 'active' | 'pending_payment' | 'voided';

/** A credit_grants row; the amount as an exact decimal string. */
export interface CreditGrantRecord {
  id: string;
  accountId: string;
  amountUsd: string;
  category: CreditCategory;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  models: string[];
  idempotencyKey: string;
  requestHash: string;
  status: CreditGrantStatus;
  stripeInvoiceId: string | null;
  voidedAt: Date | null;
  createdAt: Date;
}

export type NewCreditGrant = Pick<
  CreditGrantRecord,
  'id' | 'accountId' | 'amountUsd' | 'category' | 'priority' | 'effectiveAt' | 'expiresAt' | 'models' | 'idempotencyKey' | 'requestHash' | 'status'
> & { stripeInvoiceId?: string | null };

/** The channel a grant's creation, activation or void is announced on (payload: the account id). */
export const CREDIT_GRANTS_CHANNEL = 'tokenmeter_credit_grants';
/** The channel the ingest transaction announces usage of accounts with live grants on (payload: account ids, space-separated). */
export const CREDIT_USAGE_CHANNEL = 'tokenmeter_credit_usage';

/** The burn terms of a grant (libs/billing credits.ts). */
export function creditTermsOf(g: CreditGrantRecord): CreditGrantTerms {
  return {
    id: g.id,
    category: g.category,
    priority: g.priority,
    effectiveAt: g.effectiveAt,
    expiresAt: g.expiresAt,
    models: g.models,
    createdAt: g.createdAt,
  };
}

export class CreditGrantsRepository {
  constructor(private readonly pool: Pool) {}

  async createGrant(g: NewCreditGrant, q: Queryable = this.pool): Promise<CreditGrantRecord> {
    const row = await prismaFor(this.pool, q).creditGrant.create({ data: { ...g, stripeInvoiceId: g.stripeInvoiceId ?? null } });
    return fromPrismaRow(row);
  }

  /** `forUpdate` locks the row until the transaction ends (a void or an activation with its ledger entry). */
  async getGrant(id: string, q: Queryable = this.pool, forUpdate = false): Promise<CreditGrantRecord | undefined> {
    const db = prismaFor(this.pool, q);
    if (forUpdate) await db.$executeRaw`SELECT 1 FROM credit_grants WHERE id = ${id} FOR UPDATE`;
    const row = await db.creditGrant.findUnique({ where: { id } });
    return row === null ? undefined : fromPrismaRow(row);
  }

  async getGrantByIdempotencyKey(accountId: string, idempotencyKey: string, q: Queryable = this.pool): Promise<CreditGrantRecord | undefined> {
    const row = await prismaFor(this.pool, q).creditGrant.findUnique({ where: { accountId_idempotencyKey: { accountId, idempotencyKey } } });
    return row === null ? undefined : fromPrismaRow(row);
  }

  /** The grant a paid top-up (a Stripe invoice) creates. */
  async getGrantByStripeInvoiceId(stripeInvoiceId: string, q: Queryable = this.pool): Promise<CreditGrantRecord | undefined> {
    const row = await prismaFor(this.pool, q).creditGrant.findUnique({ where: { stripeInvoiceId } });
    return row === null ? undefined : fromPrismaRow(row);
  }

  /** An account's grants, oldest first; `statuses` narrows (default: all). */
  async listGrants(accountId: string, statuses?: readonly CreditGrantStatus[], q: Queryable = this.pool): Promise<CreditGrantRecord[]> {
    const rows = await prismaFor(this.pool, q).creditGrant.findMany({
      where: { accountId, status: statuses === undefined ? undefined : { in: [...statuses] } },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map(fromPrismaRow);
  }

  /**
   * Moves a grant from one status to another (pending_payment -> active, active -> voided);
   * undefined when it is not in `from` any more (someone else moved it first).
   */
  async moveStatus(id: string, from: CreditGrantStatus, to: CreditGrantStatus, q: Queryable = this.pool): Promise<CreditGrantRecord | undefined> {
    const [row] = await prismaFor(this.pool, q).creditGrant.updateManyAndReturn({
      where: { id, status: from },
      data: { status: to, voidedAt: to === 'voided' ? new Date() : undefined },
    });
    return row === undefined ? undefined : fromPrismaRow(row);
  }

  /**
   * The invoice close (a pg transaction, not a Transactor unit): the account's grants, locked FOR
   * UPDATE in id order until the transaction ends, so two closes of different months of the same
   * account, or a close and a grant's void or activation, never allocate the same balance twice.
   * Added by h/c2 for the close; plain pg because the close runs in pgTransaction.
   */
  async lockAccountGrants(accountId: string, q: Queryable): Promise<CreditGrantRecord[]> {
    const { rows } = await q.query(
      `SELECT id, account_id, amount_usd::text AS amount_usd, category, priority, effective_at, expires_at, models, idempotency_key,
              request_hash, status, stripe_invoice_id, voided_at, created_at
       FROM credit_grants WHERE account_id = $1 ORDER BY id FOR UPDATE`,
      [accountId],
    );
    return rows.map((r: Record<string, unknown>) => ({
      id: r.id as string,
      accountId: r.account_id as string,
      amountUsd: r.amount_usd as string,
      category: r.category as CreditCategory,
      priority: r.priority as number,
      effectiveAt: r.effective_at as Date,
      expiresAt: (r.expires_at as Date | null) ?? null,
      models: (r.models as string[] | null) ?? [],
      idempotencyKey: r.idempotency_key as string,
      requestHash: r.request_hash as string,
      status: r.status as CreditGrantStatus,
      stripeInvoiceId: (r.stripe_invoice_id as string | null) ?? null,
      voidedAt: (r.voided_at as Date | null) ?? null,
      createdAt: r.created_at as Date,
    }));
  }

  /**
   * Locks grants until the transaction ends, in id order (no deadlocks). A void locks its grant
   * before it reads the balance; the invoice close locks the grants it consumes before it reads
   * their ledger balances, so a void and a close of the same grant are serialised.
   */
  async lockGrants(ids: readonly string[], q: Queryable): Promise<void> {
    if (ids.length === 0) return;
    await q.query('SELECT 1 FROM credit_grants WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [[...ids]]);
  }

  /** Tells listeners (the authorize credit state) that an account's grants changed; delivered on commit. */
  async notifyGrantsChanged(accountId: string, q: Queryable): Promise<void> {
    await q.query(`SELECT pg_notify('${CREDIT_GRANTS_CHANNEL}', $1)`, [accountId]);
  }
}

/**
 * Called by the ingest transaction right after the budget statement: one NOTIFY on
 * tokenmeter_credit_usage with the ids of the chunk's accounts (rows of `source`, the chunk's rollup
 * rows) that have a live grant (active, effective during some of the row's hour: a late event from
 * before a grant's expiry still draws on it), space-separated. Nothing is sent when none has.
 * Ids are at most a few hundred bytes each; a chunk with more accounts than fit in one payload
 * (Postgres refuses 8000 bytes) is split into several notifications.
 */
export async function notifyCreditUsage(client: Queryable, source: string): Promise<void> {
  await client.query(notifyCreditUsageSql(source));
}

// Payload budget per notification: well under Postgres's 8000-byte limit.
const NOTIFY_PAYLOAD_BYTES = 7_000;

const notifyCreditUsageSql = (source: string) => `
SELECT pg_notify('${CREDIT_USAGE_CHANNEL}', string_agg(account_id, ' ')) FROM (
  SELECT account_id, (sum(octet_length(account_id) + 1) OVER (ORDER BY account_id) / ${NOTIFY_PAYLOAD_BYTES}) AS grp
  FROM (
    SELECT DISTINCT s.account_id FROM ${source} s
    WHERE EXISTS (
      SELECT 1 FROM credit_grants g
      WHERE g.account_id = s.account_id AND g.status = 'active'
        AND g.effective_at < s.hour + interval '1 hour' AND (g.expires_at IS NULL OR g.expires_at > s.hour)
    )
  ) live
) ids GROUP BY grp`;

function fromPrismaRow(r: CreditGrant): CreditGrantRecord {
  return {
    id: r.id,
    accountId: r.accountId,
    // toFixed() with no argument: every digit, never the exponent form of toString (1e-8).
    amountUsd: r.amountUsd.toFixed(),
    category: r.category as CreditCategory,
    priority: r.priority,
    effectiveAt: r.effectiveAt,
    expiresAt: r.expiresAt,
    models: r.models,
    idempotencyKey: r.idempotencyKey,
    requestHash: r.requestHash,
    status: r.status as CreditGrantStatus,
    stripeInvoiceId: r.stripeInvoiceId,
    voidedAt: r.voidedAt,
    createdAt: r.createdAt,
  };
}
