import type { Pool } from 'pg';
import type { Account } from './generated/prisma/client';
import { prismaFor, type Queryable } from './transactor';

export interface AccountRecord {
  id: string;
  name: string | null;
  email: string | null;
  /** What the gateway does for this account when Tokenmeter is unreachable: 'open' or 'closed' (docs/limits.md). */
  spendFailMode: string;
  createdAt: Date;
  updatedAt: Date;
}

const SELECT = { id: true, name: true, email: true, spendFailMode: true, createdAt: true, updatedAt: true } as const;

/**
 * Accounts (Prisma). Ingest also creates bare rows (id only) for accounts first seen in usage, with
 * its own set-based pg statement; the invoice push stores the account's Stripe customer id here.
 */
export class AccountsRepository {
  constructor(private readonly pool: Pool) {}

  /** undefined when the id is taken (the caller answers 409). */
  async createAccount(a: { id: string; name: string; email: string | null }, q: Queryable = this.pool): Promise<AccountRecord | undefined> {
    // skipDuplicates is ON CONFLICT DO NOTHING: a taken id does not abort the caller's transaction.
    const [created] = await prismaFor(this.pool, q).account.createManyAndReturn({
      data: [{ id: a.id, name: a.name, email: a.email }],
      skipDuplicates: true,
      select: SELECT,
    });
    return created;
  }

  /** `forUpdate` locks the row until the transaction ends (read-modify-write with an audit entry). */
  async getAccount(id: string, q: Queryable = this.pool, forUpdate = false): Promise<AccountRecord | undefined> {
    const db = prismaFor(this.pool, q);
    if (forUpdate) await db.$executeRaw`SELECT 1 FROM accounts WHERE id = ${id} FOR UPDATE`;
    return (await db.account.findUnique({ where: { id }, select: SELECT })) ?? undefined;
  }

  /** Ordered by id; `afterId` is the previous page's last id. */
  async listAccounts(page: { afterId?: string; limit: number }): Promise<AccountRecord[]> {
    return prismaFor(this.pool, this.pool).account.findMany({
      where: page.afterId === undefined ? {} : { id: { gt: page.afterId } },
      orderBy: { id: 'asc' },
      take: page.limit,
      select: SELECT,
    });
  }

  /**
   * Accounts whose id starts with `text` or whose name contains it (case-insensitive), by id.
   * The id part is a range scan of the primary key (ids are COLLATE "C", so LIKE 'prefix%' uses
   * the btree); the name part reads the accounts table (one row per customer, not per event) and
   * stops at `limit` matches. Raw SQL: the UNION keeps the two plans apart, which an OR would not.
   */
  async searchAccounts(text: string, limit: number): Promise<AccountRecord[]> {
    const like = text.replace(/[\\%_]/g, (c) => `\\${c}`);
    const rows = await prismaFor(this.pool, this.pool).$queryRaw<Account[]>`
      (SELECT id, name, email, spend_fail_mode AS "spendFailMode", created_at AS "createdAt", updated_at AS "updatedAt" FROM accounts
        WHERE id LIKE ${`${like}%`} ESCAPE '\\' ORDER BY id LIMIT ${limit})
      UNION
      (SELECT id, name, email, spend_fail_mode AS "spendFailMode", created_at AS "createdAt", updated_at AS "updatedAt" FROM accounts
        WHERE name ILIKE ${`%${like}%`} ESCAPE '\\' ORDER BY id LIMIT ${limit})
      ORDER BY id LIMIT ${limit}`;
    return rows.map((r) => ({ id: r.id, name: r.name, email: r.email, spendFailMode: r.spendFailMode, createdAt: r.createdAt, updatedAt: r.updatedAt }));
  }

  /** The accounts among `ids` (one primary-key lookup per id, in one query). */
  async getAccountsByIds(ids: string[]): Promise<AccountRecord[]> {
    if (ids.length === 0) return [];
    return prismaFor(this.pool, this.pool).account.findMany({ where: { id: { in: ids } }, select: SELECT });
  }

  async updateAccount(
    id: string,
    changes: { name?: string; email?: string | null; spendFailMode?: 'open' | 'closed' },
    q: Queryable = this.pool,
  ): Promise<AccountRecord | undefined> {
    // updateManyAndReturn: a missing id is an empty result, not an error (P2025) aborting the transaction.
    const [updated] = await prismaFor(this.pool, q).account.updateManyAndReturn({
      where: { id },
      data: { name: changes.name, email: changes.email, spendFailMode: changes.spendFailMode, updatedAt: new Date() },
      select: SELECT,
    });
    return updated;
  }

  /** The account's Stripe customer, once a push created (or found) it. */
  async getStripeCustomerId(id: string): Promise<string | null> {
    const row = await prismaFor(this.pool, this.pool).account.findUnique({ where: { id }, select: { stripeCustomerId: true } });
    return row?.stripeCustomerId ?? null;
  }

  /** First writer wins; returns the stored id (a concurrent push got the same id from Stripe's idempotency). */
  async setStripeCustomerId(id: string, customerId: string): Promise<string> {
    const db = prismaFor(this.pool, this.pool);
    await db.account.updateMany({ where: { id, stripeCustomerId: null }, data: { stripeCustomerId: customerId, updatedAt: new Date() } });
    const row = await db.account.findUnique({ where: { id }, select: { stripeCustomerId: true } });
    return row?.stripeCustomerId ?? customerId;
  }
}
