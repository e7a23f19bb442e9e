import type { Pool } from 'pg';
import type { Queryable } from './transactor';

export interface AccountRecord {
  id: string;
  name: string | null;
  email: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = 'id, name, email, created_at, updated_at';

/**
 * Accounts. Ingest also creates bare rows (id only) for accounts first seen in usage; the invoice
 * push stores the account's Stripe customer id here.
 */
export class AccountsRepository {
  constructor(private readonly pool: Pool) {}

  /** undefined when the id is taken (the caller answers 409). */
  async createAccount(a: { id: string; name: string; email: string | null }, q: Queryable = this.pool): Promise<AccountRecord | undefined> {
    const { rows } = await q.query(
      `INSERT INTO accounts (id, name, email) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
      [a.id, a.name, a.email],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** `forUpdate` locks the row until the transaction ends (read-modify-write with an audit entry). */
  async getAccount(id: string, q: Queryable = this.pool, forUpdate = false): Promise<AccountRecord | undefined> {
    const { rows } = await q.query(`SELECT ${COLUMNS} FROM accounts WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** Ordered by id; `afterId` is the previous page's last id. */
  async listAccounts(page: { afterId?: string; limit: number }): Promise<AccountRecord[]> {
    const { rows } = await this.pool.query(
      `SELECT ${COLUMNS} FROM accounts WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2`,
      [page.afterId ?? null, page.limit],
    );
    return rows.map(toRecord);
  }

  /**
   * Accounts whose id starts with `text` or whose name contains it (case-insensitive), by id.
   * The id part is a range scan of the primary key (ids are COLLATE "C", so LIKE 'prefix%' uses
   * the btree); the name part reads the accounts table (one row per customer, not per event) and
   * stops at `limit` matches.
   */
  async searchAccounts(text: string, limit: number): Promise<AccountRecord[]> {
    const like = text.replace(/[\\%_]/g, (c) => `\\${c}`);
    const { rows } = await this.pool.query(
      `(SELECT ${COLUMNS} FROM accounts WHERE id LIKE $1 ESCAPE '\\' ORDER BY id LIMIT $3)
       UNION
       (SELECT ${COLUMNS} FROM accounts WHERE name ILIKE $2 ESCAPE '\\' ORDER BY id LIMIT $3)
       ORDER BY id LIMIT $3`,
      [`${like}%`, `%${like}%`, limit],
    );
    return rows.map(toRecord);
  }

  /** The accounts among `ids` (one primary-key lookup per id, in one query). */
  async getAccountsByIds(ids: string[]): Promise<AccountRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query(`SELECT ${COLUMNS} FROM accounts WHERE id = ANY($1::text[])`, [ids]);
    return rows.map(toRecord);
  }

  async updateAccount(
    id: string,
    changes: { name?: string; email?: string | null },
    q: Queryable = this.pool,
  ): Promise<AccountRecord | undefined> {
    const { rows } = await q.query(
      `UPDATE accounts SET
         name = CASE WHEN $2 THEN $3 ELSE name END,
         email = CASE WHEN $4 THEN $5 ELSE email END,
         updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, changes.name !== undefined, changes.name ?? null, changes.email !== undefined, changes.email ?? null],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** The account's Stripe customer, once a push created (or found) it. */
  async getStripeCustomerId(id: string): Promise<string | null> {
    const { rows } = await this.pool.query<{ stripe_customer_id: string | null }>('SELECT stripe_customer_id FROM accounts WHERE id = $1', [id]);
    return rows[0]?.stripe_customer_id ?? null;
  }

  /** First writer wins; returns the stored id (a concurrent push got the same id from Stripe's idempotency). */
  async setStripeCustomerId(id: string, customerId: string): Promise<string> {
    const { rows } = await this.pool.query<{ stripe_customer_id: string }>(
      `UPDATE accounts SET stripe_customer_id = coalesce(stripe_customer_id, $2), updated_at = now() WHERE id = $1
       RETURNING stripe_customer_id`,
      [id, customerId],
    );
    return rows[0]?.stripe_customer_id ?? customerId;
  }
}

function toRecord(r: Record<string, any>): AccountRecord {
  return { id: r.id, name: r.name, email: r.email, createdAt: r.created_at, updatedAt: r.updated_at };
}
