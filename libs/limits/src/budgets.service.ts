import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  budgetState,
  budgetWindowEnd,
  budgetWindowStart,
  costUnitsToString,
  DEFAULT_BUDGET_THRESHOLDS,
  NotFoundError,
  parseCostUnits,
  parseThresholdPercent,
  ValidationError,
  type BudgetEnforcement,
  type BudgetState,
  type BudgetWindow,
} from '@tokenmeter/billing';
import type { Actor } from '@tokenmeter/auth';
import {
  AccountsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  BudgetSpendRepository,
  BudgetsRepository,
  lockBudgetsExclusive,
  Transactor,
  type BudgetDrift,
  type BudgetRecord,
} from '@tokenmeter/db';

export interface NewBudgetInput {
  accountId: string;
  apiKeyId: string | null;
  model: string | null;
  /** Exact decimal string, > 0. */
  limitUsd: string;
  window: BudgetWindow;
  /** Percents; DEFAULT_BUDGET_THRESHOLDS when absent. */
  thresholds?: string[];
  enforce: BudgetEnforcement;
}

export type BudgetChangesInput = Partial<Pick<NewBudgetInput, 'limitUsd' | 'thresholds' | 'enforce'>>;

/** A budget with its current window: what GET /v1/budgets and the dashboard show. */
export interface BudgetView {
  budget: BudgetRecord;
  windowStart: Date;
  /** null for a total budget. */
  resetsAt: Date | null;
  spendUsd: string;
  /** limit - spend; negative when a soft limit (or late usage) went past it. */
  remainingUsd: string;
  state: BudgetState;
}

export function newBudgetId(): string {
  return `bud_${randomBytes(12).toString('hex')}`;
}

/**
 * Budgets: create, change, delete (audited), and read with their current window's spend.
 *
 * A creation or change takes the budgets lock exclusively (docs/limits.md, "The write path"):
 * every ingest transaction in flight finishes first and the next ones wait, so the window's spend
 * so far is read from settled rollups, and thresholds already reached raise their alert once.
 */
@Injectable()
export class BudgetsService {
  constructor(
    private readonly budgets: BudgetsRepository,
    private readonly spend: BudgetSpendRepository,
    private readonly accounts: AccountsRepository,
    private readonly apiKeys: ApiKeysRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  private now(): Date {
    return new Date();
  }

  async createBudget(input: NewBudgetInput, actor: Actor): Promise<BudgetView> {
    const limitUsd = checkedLimit(input.limitUsd);
    const thresholds = checkedThresholds(input.thresholds ?? [...DEFAULT_BUDGET_THRESHOLDS]);
    const created = await this.transactor.run(async (q) => {
      if (!(await this.accounts.getAccount(input.accountId, q))) throw new NotFoundError('account', input.accountId);
      if (input.apiKeyId !== null) {
        const key = await this.apiKeys.getApiKey(input.apiKeyId, q);
        if (!key || key.accountId !== input.accountId) {
          throw new ValidationError('api_key_id', `${input.apiKeyId} is not an API key of account ${input.accountId}`);
        }
      }
      await lockBudgetsExclusive(q);
      const budget = await this.budgets.createBudget(
        {
          id: newBudgetId(),
          accountId: input.accountId,
          apiKeyId: input.apiKeyId,
          model: input.model,
          limitUsd,
          window: input.window,
          thresholds,
          enforce: input.enforce,
          countsFrom: budgetWindowStart(input.window, this.now()),
        },
        q,
      );
      await this.spend.openWindows(budget, q);
      await this.spend.alertReachedThresholds(budget.id, q);
      await this.spend.notifyBudgetChanged(budget.id, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'budget.create', targetType: 'budget', targetId: budget.id, before: null, after: budget, requestId: actor.requestId },
        q,
      );
      return budget;
    });
    return this.viewOf(created);
  }

  /** Limit, thresholds and enforcement, effective from now; scope and window never change. */
  async updateBudget(id: string, changes: BudgetChangesInput, actor: Actor): Promise<BudgetView> {
    const checked = {
      limitUsd: changes.limitUsd === undefined ? undefined : checkedLimit(changes.limitUsd),
      thresholds: changes.thresholds === undefined ? undefined : checkedThresholds(changes.thresholds),
      enforce: changes.enforce,
    };
    const updated = await this.transactor.run(async (q) => {
      await lockBudgetsExclusive(q);
      const before = await this.budgets.getBudget(id, q, true);
      if (!before) throw new NotFoundError('budget', id);
      const after = (await this.budgets.updateBudget(id, checked, q))!;
      await this.spend.alertReachedThresholds(id, q);
      await this.spend.notifyBudgetChanged(id, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'budget.update', targetType: 'budget', targetId: id, before, after, requestId: actor.requestId },
        q,
      );
      return after;
    });
    return this.viewOf(updated);
  }

  /** Returns the budget with its last window, as it was when deleted. */
  async deleteBudget(id: string, actor: Actor): Promise<BudgetView> {
    const deleted = await this.transactor.run(async (q) => {
      const deleted = await this.budgets.deleteBudget(id, q);
      if (!deleted) throw new NotFoundError('budget', id);
      await this.spend.notifyBudgetChanged(id, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'budget.delete', targetType: 'budget', targetId: id, before: deleted, after: null, requestId: actor.requestId },
        q,
      );
      return deleted;
    });
    return this.viewOf(deleted);
  }

  async getBudget(id: string): Promise<BudgetView> {
    const budget = await this.budgets.getBudget(id);
    if (!budget) throw new NotFoundError('budget', id);
    return this.viewOf(budget);
  }

  /** An account's live budgets with their current windows (unknown account: NotFound). */
  async listBudgets(accountId: string): Promise<BudgetView[]> {
    if (!(await this.accounts.getAccount(accountId))) throw new NotFoundError('account', accountId);
    const budgets = await this.budgets.listBudgets(accountId);
    return this.viewsOf(budgets);
  }

  /** Every budget window against the rollups it derives from: zero differences is the rule. */
  async reconcile(accountId?: string): Promise<{ windowsCompared: number; drift: BudgetDrift[] }> {
    const [windowsCompared, drift] = await Promise.all([this.spend.countWindows(accountId), this.spend.drift(accountId)]);
    return { windowsCompared, drift };
  }

  private async viewOf(budget: BudgetRecord): Promise<BudgetView> {
    return (await this.viewsOf([budget]))[0];
  }

  private async viewsOf(budgets: BudgetRecord[]): Promise<BudgetView[]> {
    const now = this.now();
    const keys = budgets.map((b) => ({ budgetId: b.id, windowStart: budgetWindowStart(b.window, now) }));
    const windows = new Map((await this.spend.windowsOf(keys)).map((w) => [w.budgetId, w]));
    return budgets.map((budget, i) => {
      const spend = parseCostUnits(windows.get(budget.id)?.spendUsd ?? '0', 'spend_usd');
      const limit = parseCostUnits(budget.limitUsd, 'limit_usd');
      return {
        budget,
        windowStart: keys[i].windowStart,
        resetsAt: budgetWindowEnd(budget.window, keys[i].windowStart),
        spendUsd: costUnitsToString(spend),
        remainingUsd: costUnitsToString(limit - spend),
        state: budgetState(spend, limit, budget.enforce),
      };
    });
  }
}

/** A limit is a positive exact amount that cost units hold (at most 22 decimals). */
function checkedLimit(text: string): string {
  const units = parseCostUnits(text, 'limit_usd');
  if (units <= 0n) throw new ValidationError('limit_usd', 'must be greater than 0');
  return costUnitsToString(units);
}

/** Distinct percents in (0, 100], ascending, as canonical decimal text. */
function checkedThresholds(thresholds: string[]): string[] {
  if (thresholds.length > 10) throw new ValidationError('thresholds', 'at most 10 thresholds');
  const scaled = [...new Set(thresholds.map(parseThresholdPercent))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return scaled.map((s) => {
    const whole = s / 10_000n;
    const fraction = (s % 10_000n).toString().padStart(4, '0').replace(/0+$/, '');
    return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
  });
}
