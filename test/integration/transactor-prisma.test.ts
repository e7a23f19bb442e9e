import { randomUUID } from 'node:crypto';
import { AccountsRepository, AuditLogRepository, pgTransaction, Transactor, type Database } from '@tokenmeter/db';
import { openTestDatabase } from '../helpers/tokenmeter-db';

/**
 * A Transactor unit mixes pg statements (on the client it is handed) and Prisma repository calls
 * (through the same client). Both must be one transaction: commit together, roll back together.
 */
describe('Transactor: pg statements and Prisma repositories in one transaction', () => {
  let db: Database;
  let accounts: AccountsRepository;
  let audit: AuditLogRepository;
  beforeAll(() => {
    db = openTestDatabase();
    accounts = new AccountsRepository(db.pool);
    audit = new AuditLogRepository(db.pool);
  });
  afterAll(() => db.close());

  const entry = (targetId: string) => ({ actorKeyId: null, action: 'test.tx', targetType: 'account', targetId, before: null, after: { n: 1 }, requestId: null });
  const auditRows = async (targetId: string) =>
    (await db.pool.query<{ before_is_null: boolean; after: unknown }>('SELECT before IS NULL AS before_is_null, after FROM audit_log WHERE target_id = $1', [targetId])).rows;
  const accountExists = async (id: string) => (await db.pool.query('SELECT 1 FROM accounts WHERE id = $1', [id])).rowCount === 1;

  it('commits a pg write, a Prisma write and a Prisma audit entry together', async () => {
    const a = `tx-${randomUUID()}`;
    const b = `tx-${randomUUID()}`;
    await new Transactor(db.pool).run(async (q) => {
      await q.query('INSERT INTO accounts (id) VALUES ($1)', [a]);
      await accounts.createAccount({ id: b, name: 'B', email: null }, q);
      // The Prisma call sees the pg statement's uncommitted row: same transaction, same connection.
      expect(await accounts.getAccount(a, q)).toMatchObject({ id: a });
      await audit.append(entry(b), q);
    });
    expect(await accountExists(a)).toBe(true);
    expect(await accountExists(b)).toBe(true);
    // SQL NULL for a null `before`, JSON for `after`.
    expect(await auditRows(b)).toEqual([{ before_is_null: true, after: { n: 1 } }]);
  });

  it('rolls both back when the unit fails after them', async () => {
    const a = `tx-${randomUUID()}`;
    const b = `tx-${randomUUID()}`;
    const unit = new Transactor(db.pool).run(async (q) => {
      await q.query('INSERT INTO accounts (id) VALUES ($1)', [a]);
      await accounts.createAccount({ id: b, name: 'B', email: null }, q);
      await audit.append(entry(b), q);
      throw new Error('boom');
    });
    await expect(unit).rejects.toThrow('boom');
    expect(await accountExists(a)).toBe(false);
    expect(await accountExists(b)).toBe(false);
    expect(await auditRows(b)).toEqual([]);
  });

  it('rolls back a unit that asks not to commit (a dry run), read-only included', async () => {
    const b = `tx-${randomUUID()}`;
    const result = await new Transactor(db.pool).runWithOutcome(async (q) => {
      await accounts.createAccount({ id: b, name: 'B', email: null }, q);
      return { result: 'dry', commit: false };
    });
    expect(result).toBe('dry');
    expect(await accountExists(b)).toBe(false);
    const readOnly = new Transactor(db.pool).run(async (q) => accounts.createAccount({ id: b, name: 'B', email: null }, q), { readOnly: true });
    await expect(readOnly).rejects.toThrow(/read-only transaction/);
  });

  it('refuses a Prisma repository call on a pg client that is not a Transactor unit', async () => {
    const b = `tx-${randomUUID()}`;
    const unit = pgTransaction(db.pool, async (client) => ({ result: await accounts.createAccount({ id: b, name: 'B', email: null }, client), commit: true }));
    await expect(unit).rejects.toThrow(/not a Transactor unit/);
    expect(await accountExists(b)).toBe(false);
  });

  it('keeps concurrent units apart', async () => {
    const ids = Array.from({ length: 12 }, () => `tx-${randomUUID()}`);
    const results = await Promise.allSettled(
      ids.map((id, i) =>
        new Transactor(db.pool).run(async (q) => {
          await q.query('INSERT INTO accounts (id) VALUES ($1)', [id]);
          await audit.append(entry(id), q);
          if (i % 2 === 1) throw new Error(`fail ${i}`);
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(ids.map((_, i) => (i % 2 === 1 ? 'rejected' : 'fulfilled')));
    for (const [i, id] of ids.entries()) {
      expect(await accountExists(id)).toBe(i % 2 === 0);
      expect((await auditRows(id)).length).toBe(i % 2 === 0 ? 1 : 0);
    }
  });
});
