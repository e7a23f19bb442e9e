import { z } from 'zod';
import { BUDGET_ENFORCEMENTS, BUDGET_WINDOWS } from '@tokenmeter/billing';
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
