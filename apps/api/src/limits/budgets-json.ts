import { z } from 'zod';
import { BUDGET_ENFORCEMENTS, BUDGET_WINDOWS } from '@tokenmeter/billing';
import type { BudgetDrift } from '@tokenmeter/db';
import type { BudgetView } from '@tokenmeter/limits';
import { dateTime, listOf, signedUsdAmount, usdAmount } from '../common/response-fields';

const percent = z.string().regex(/^\d+(\.\d+)?$/).describe('Percent of the limit, a decimal string, e.g. "80"');

/** A budget and its current window, exactly as /v1/budgets, the admin routes and the dashboard show it. */
export const BudgetSchema = z
  .object({
    id: z.string(),
    account_id: z.string(),
    api_key_id: z.string().nullable().describe('null: every key of the account'),
    model: z.string().nullable().describe('null: every model'),
    limit_usd: usdAmount,
    window: z.enum(BUDGET_WINDOWS).describe('Calendar UTC day or month, or total (never resets)'),
    thresholds: z.array(percent).describe('Alert thresholds, ascending'),
    enforce: z.enum(BUDGET_ENFORCEMENTS).describe('hard: /v1/spend/authorize denies past the limit; soft: alerts only'),
    window_start: dateTime.describe('The current window'),
    resets_at: dateTime.nullable().describe('When the current window ends; null for total'),
    spend_usd: usdAmount.describe('Exact spend in the current window, from the same costs as rollups and invoices'),
    remaining_usd: signedUsdAmount.describe('limit - spend; negative once past the limit'),
    state: z.enum(['ok', 'soft', 'blocked']).describe('blocked: a hard limit is spent; soft: a soft one is'),
    created_at: dateTime,
    updated_at: dateTime,
  })
  .strict();
export type BudgetJson = z.input<typeof BudgetSchema>;
export const BudgetListSchema = listOf(BudgetSchema);

export function budgetJson(v: BudgetView): BudgetJson {
  const b = v.budget;
  return {
    id: b.id,
    account_id: b.accountId,
    api_key_id: b.apiKeyId,
    model: b.model,
    limit_usd: b.limitUsd,
    window: b.window,
    thresholds: b.thresholds,
    enforce: b.enforce,
    window_start: v.windowStart.toISOString(),
    resets_at: v.resetsAt?.toISOString() ?? null,
    spend_usd: v.spendUsd,
    remaining_usd: v.remainingUsd,
    state: v.state,
    created_at: b.createdAt.toISOString(),
    updated_at: b.updatedAt.toISOString(),
  };
}

export const BudgetReconciliationSchema = z
  .object({
    windows_compared: z.number().int().nonnegative().describe('Budget windows compared with the hourly rollups'),
    mismatched_windows: z.number().int().nonnegative().describe('Windows whose spend differs from the rollups: must be 0'),
    mismatches: z.array(
      z
        .object({
          budget_id: z.string(),
          account_id: z.string(),
          window_start: dateTime,
          budget_spend_usd: signedUsdAmount,
          rollup_spend_usd: signedUsdAmount,
          difference_usd: signedUsdAmount.describe('budget - rollups'),
        })
        .strict(),
    ),
  })
  .strict();
export type BudgetReconciliationJson = z.input<typeof BudgetReconciliationSchema>;

export function budgetReconciliationJson(r: { windowsCompared: number; drift: BudgetDrift[] }): BudgetReconciliationJson {
  return {
    windows_compared: r.windowsCompared,
    mismatched_windows: r.drift.length,
    mismatches: r.drift.map((d) => ({
      budget_id: d.budgetId,
      account_id: d.accountId,
      window_start: d.windowStart.toISOString(),
      budget_spend_usd: d.budgetSpendUsd,
      rollup_spend_usd: d.rollupSpendUsd,
      difference_usd: d.differenceUsd,
    })),
  };
}
