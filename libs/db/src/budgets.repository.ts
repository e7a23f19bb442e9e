import type { Pool } from 'pg';
import type { Budget } from './generated/prisma/client';
import { prismaFor, type Queryable } from './transactor';

/** A budgets row; the limit and thresholds as exact decimal strings. */
export interface BudgetRecord {
  id: string;
  accountId: string;
  apiKeyId: string | null;
  model: string | null;
  limitUsd: string;
  window: 'day' | 'month' | 'total';
  /** Percents, ascending (the service stores them sorted), without trailing zeros. */
  thresholds: string[];
  enforce: 'hard' | 'soft';
  countsFrom: Date;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

export type NewBudget = Pick<BudgetRecord, 'id' | 'accountId' | 'apiKeyId' | 'model' | 'limitUsd' | 'window' | 'thresholds' | 'enforce' | 'countsFrom'>;
export type BudgetChanges = Partial<Pick<BudgetRecord, 'limitUsd' | 'thresholds' | 'enforce'>>;

/**
 * Budgets (Prisma). Scope and window never change after creation; a deleted budget keeps its row
 * (deleted_at) so its alerts and audit entries still point somewhere. Spend is budget-spend.repository's.
 */
export class BudgetsRepository {
  constructor(private readonly pool: Pool) {}

  async createBudget(b: NewBudget, q: Queryable = this.pool): Promise<BudgetRecord> {
    const row = await prismaFor(this.pool, q).budget.create({
      data: { ...b, thresholds: b.thresholds },
    });
    return fromPrismaRow(row);
  }

  /** A live budget; `forUpdate` locks it until the transaction ends. */
  async getBudget(id: string, q: Queryable = this.pool, forUpdate = false): Promise<BudgetRecord | undefined> {
    const db = prismaFor(this.pool, q);
    if (forUpdate) await db.$executeRaw`SELECT 1 FROM budgets WHERE id = ${id} FOR UPDATE`;
    const row = await db.budget.findFirst({ where: { id, deletedAt: null } });
    return row === null ? undefined : fromPrismaRow(row);
  }

  /** An account's live budgets, oldest first. */
  async listBudgets(accountId: string, q: Queryable = this.pool): Promise<BudgetRecord[]> {
    const rows = await prismaFor(this.pool, q).budget.findMany({
      where: { accountId, deletedAt: null },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map(fromPrismaRow);
  }

  async updateBudget(id: string, changes: BudgetChanges, q: Queryable = this.pool): Promise<BudgetRecord | undefined> {
    const [row] = await prismaFor(this.pool, q).budget.updateManyAndReturn({ where: { id, deletedAt: null }, data: changes });
    return row === undefined ? undefined : fromPrismaRow(row);
  }

  async deleteBudget(id: string, q: Queryable = this.pool): Promise<BudgetRecord | undefined> {
    const [row] = await prismaFor(this.pool, q).budget.updateManyAndReturn({ where: { id, deletedAt: null }, data: { deletedAt: new Date() } });
    return row === undefined ? undefined : fromPrismaRow(row);
  }
}

function fromPrismaRow(r: Budget): BudgetRecord {
  return {
    id: r.id,
    accountId: r.accountId,
    apiKeyId: r.apiKeyId,
    model: r.model,
    limitUsd: r.limitUsd.toFixed(),
    window: r.window as BudgetRecord['window'],
    thresholds: r.thresholds.map((t) => t.toFixed()),
    enforce: r.enforce as BudgetRecord['enforce'],
    countsFrom: r.countsFrom,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    deletedAt: r.deletedAt,
  };
}
