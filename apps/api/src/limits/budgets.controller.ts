import { Controller, Delete, Get, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { BUDGET_ENFORCEMENTS, BUDGET_WINDOWS } from '@tokenmeter/billing';
import { BudgetsService } from '@tokenmeter/limits';
import { CurrentPrincipal, Roles, scopeAccount, type Principal } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { idFilter, identifier, textFilter, ValidBody, ValidParam, ValidQuery, whenValid } from '../common/validation';
import { BudgetListSchema, BudgetReconciliationSchema, BudgetSchema, budgetJson, budgetReconciliationJson } from './budgets-json';

// Money travels as strings: a positive amount with at most 22 decimals (what exact cost units hold).
const limitUsd = z
  .string({ invalid_type_error: 'must be a decimal string such as "100.00" (JSON numbers are refused for money)' })
  .regex(/^\d{1,15}(\.\d{1,22})?$/, 'must be a decimal string with at most 15 integer digits and 22 decimals, e.g. "100.00"')
  .refine((s) => /[1-9]/.test(s), 'must be greater than 0')
  .describe('USD, a decimal STRING such as "100.00" (JSON numbers are refused)');
const threshold = z
  .string({ invalid_type_error: 'must be a percent as a decimal string, e.g. "80"' })
  .regex(/^\d{1,3}(\.\d{1,4})?$/, 'must be a percent in (0, 100] with at most 4 decimals, e.g. "80"')
  .refine((s) => /[1-9]/.test(s) && Number(s) <= 100, 'must be a percent in (0, 100]');
const thresholds = z.array(threshold).min(1, 'give at least one threshold, or leave thresholds out for 50, 80, 100').max(10, 'at most 10 thresholds');
const window = z.enum(BUDGET_WINDOWS, { errorMap: () => ({ message: 'must be "day", "month" or "total"' }) });
const enforce = z.enum(BUDGET_ENFORCEMENTS, { errorMap: () => ({ message: 'must be "hard" or "soft"' }) });

export const newBudgetBody = z
  .object({
    account_id: identifier,
    api_key_id: idFilter.nullish().describe('Limit one API key of the account; absent: the whole account'),
    model: textFilter(128).nullish().describe('Limit one model; absent: every model'),
    limit_usd: limitUsd,
    window,
    thresholds: thresholds.optional().describe('Alert thresholds in percent of the limit; default ["50", "80", "100"]'),
    enforce,
  })
  .strict();
const budgetChanges = whenValid(
  z.object({ limit_usd: limitUsd.optional(), thresholds: thresholds.optional(), enforce: enforce.optional() }).strict(),
  (b, ctx) => {
    if (b.limit_usd === undefined && b.thresholds === undefined && b.enforce === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give at least one of limit_usd, thresholds, enforce (scope and window never change)' });
    }
  },
);
const accountQuery = z.object({ account_id: idFilter.optional().describe('Admin keys only (required for them): the account to read') });

/** Budgets, by admins (audited; a change is effective from now). */
@ApiTags('admin: budgets')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/budgets')
export class AdminBudgetsController {
  constructor(private readonly budgets: BudgetsService) {}

  @Post()
  @ApiOperation({
    summary: 'Create a budget for an account, one of its API keys, optionally one model',
    description: [
      'The current window counts its spend so far: a budget created mid-month starts at what the month has cost.',
      'Spend comes from the same exact per-event costs as rollups and invoices, updated in the ingest transaction.',
      'Thresholds already reached alert at once. Amounts are decimal strings.',
    ].join(' '),
  })
  @ApiAnswer(BudgetSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 404)
  async create(@ValidBody(newBudgetBody) b: z.output<typeof newBudgetBody>, @CurrentActor() actor: Actor) {
    const created = await this.budgets.createBudget(
      {
        accountId: b.account_id,
        apiKeyId: b.api_key_id ?? null,
        model: b.model ?? null,
        limitUsd: b.limit_usd,
        window: b.window,
        thresholds: b.thresholds,
        enforce: b.enforce,
      },
      actor,
    );
    return budgetJson(created);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One budget with its current window' })
  @ApiAnswer(BudgetSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async get(@ValidParam('id', idFilter) id: string) {
    return budgetJson(await this.budgets.getBudget(id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change a budget’s limit, thresholds or enforcement, from now on (scope and window never change)' })
  @ApiAnswer(BudgetSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async update(@ValidParam('id', idFilter) id: string, @ValidBody(budgetChanges) b: z.output<typeof budgetChanges>, @CurrentActor() actor: Actor) {
    return budgetJson(await this.budgets.updateBudget(id, { limitUsd: b.limit_usd, thresholds: b.thresholds, enforce: b.enforce }, actor));
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete a budget: it stops counting and authorize stops applying it (its alerts and audit entries stay)' })
  @ApiAnswer(BudgetSchema, 200, 'The budget as it was when deleted')
  @errorResponses(...ADMIN_ERRORS, 404)
  async remove(@ValidParam('id', idFilter) id: string, @CurrentActor() actor: Actor) {
    return budgetJson(await this.budgets.deleteBudget(id, actor));
  }
}

const reconcileQuery = z.object({ account_id: idFilter.optional().describe('Only this account') });

/** Budget spend against the rollups, per window: the proof that limits and invoices count the same usage. */
@ApiTags('admin: budgets')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/reconciliation/budgets')
export class BudgetReconciliationController {
  constructor(private readonly budgets: BudgetsService) {}

  @Get()
  @ApiOperation({ summary: 'Every budget window vs the sum of its hourly rollups, exactly; mismatched_windows must be 0' })
  @ApiAnswer(BudgetReconciliationSchema)
  @errorResponses(...ADMIN_ERRORS)
  async reconcile(@ValidQuery(reconcileQuery) q: z.output<typeof reconcileQuery>) {
    return budgetReconciliationJson(await this.budgets.reconcile(q.account_id));
  }
}

/** An account's budgets with spend and remaining in the current window. */
@ApiTags('budgets')
@ApiBearerAuth()
@Roles('account', 'admin')
@Controller('v1/budgets')
export class BudgetsController {
  constructor(private readonly budgets: BudgetsService) {}

  @Get()
  @ApiOperation({ summary: 'The account’s budgets, each with its current window’s exact spend and what remains' })
  @ApiAnswer(BudgetListSchema)
  @errorResponses(400, 401, 403, 404)
  async list(@CurrentPrincipal() principal: Principal, @ValidQuery(accountQuery) q: z.output<typeof accountQuery>) {
    return { data: (await this.budgets.listBudgets(scopeAccount(principal, q.account_id))).map(budgetJson) };
  }
}
