import { budgetWindowEnd, budgetWindowStart, type BudgetEnforcement, type BudgetWindow } from './budgets';
import { priceEventUnits, type CostUnits } from './cost-units';
import type { OverrideBook } from './overrides';
import type { ModelLimits, PriceBook } from './pricing';

/**
 * The gateway's authorize check (docs/limits.md, "The gateway's check"), the pure part: what a
 * request is estimated to cost at most (its hold), and whether it fits the account's budgets.
 * Amounts are exact cost units (10^-22 USD), the very numbers budget_windows sums, so "exactly at
 * the limit" means exactly.
 */

/** One budget as the check needs it. */
export interface AuthorizeBudget {
  id: string;
  accountId: string;
  /** null: every key of the account. */
  apiKeyId: string | null;
  /** null: every model. */
  model: string | null;
  limitUnits: CostUnits;
  window: BudgetWindow;
  enforce: BudgetEnforcement;
}

export interface AuthorizeRequest {
  accountId: string;
  apiKeyId: string | null;
  model: string;
  /** Input tokens the gateway counted (0 when it sent none). */
  estimatedInputTokens: number;
  /** The request's max_output_tokens; null when it sent none. */
  maxOutputTokens: number | null;
}

/** The budgets of the account that cover this request: its key's (or every key's), its model's (or every model's). */
export function applicableBudgets<B extends AuthorizeBudget>(budgets: readonly B[], request: Pick<AuthorizeRequest, 'accountId' | 'apiKeyId' | 'model'>): B[] {
  return budgets.filter(
    (b) =>
      b.accountId === request.accountId &&
      (b.apiKeyId === null || b.apiKeyId === request.apiKeyId) &&
      (b.model === null || b.model === request.model),
  );
}

export interface HoldEstimate {
  units: CostUnits;
  /** The output tokens priced: max_output_tokens, else the model's cap, else the fallback. */
  outputTokens: number;
  /** Where outputTokens came from. */
  outputFrom: 'max_output_tokens' | 'model_cap' | 'fallback';
  /** false: no list price is in force for the model now, so the estimate is 0 (the event will be stored unpriced). */
  priced: boolean;
}

/**
 * The most a request can cost: its input tokens plus its maximum output, priced with
 * priceEventUnits at the rates in force `now` for the account (list price book and the account's
 * override), exactly as its event will be if it occurs now. Cache reads are cheaper than input
 * (or equal) in every price book we hold, so pricing all prompt tokens as uncached input never
 * underestimates; a cache write can cost more than input, which the gateway cannot know ahead.
 * Without max_output_tokens the model's max_output_tokens caps the output (the provider cannot
 * return more), else `fallbackMaxOutputTokens`.
 */
export function estimateHold(
  book: PriceBook,
  overrides: OverrideBook,
  limits: ModelLimits | undefined,
  fallbackMaxOutputTokens: number,
  request: AuthorizeRequest,
  now: Date,
): HoldEstimate {
  let outputTokens: number;
  let outputFrom: HoldEstimate['outputFrom'];
  if (request.maxOutputTokens !== null) {
    outputTokens = request.maxOutputTokens;
    outputFrom = 'max_output_tokens';
  } else if (limits?.maxOutputTokens != null) {
    outputTokens = limits.maxOutputTokens;
    outputFrom = 'model_cap';
  } else {
    outputTokens = fallbackMaxOutputTokens;
    outputFrom = 'fallback';
  }
  const priced = priceEventUnits(book, overrides, {
    accountId: request.accountId,
    model: request.model,
    occurredAt: now,
    tokens: { inputTokens: request.estimatedInputTokens, outputTokens, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
  });
  return { units: priced === undefined ? 0n : priced.costs.total, outputTokens, outputFrom, priced: priced !== undefined };
}

/** A budget with what is known of its current window. */
export interface BudgetPosition {
  budget: AuthorizeBudget;
  windowStart: Date;
  /** Committed spend in the window (budget_windows.spend_usd). */
  spendUnits: CostUnits;
  /** Sum of the holds of requests in flight on this budget (this request's own hold not included). */
  holdUnits: CostUnits;
  /** When the earliest of those holds expires (its TTL), null when there is none. */
  earliestHoldExpiry: Date | null;
}

export type AuthorizeScope = 'account' | 'api_key' | 'model' | 'api_key+model';

export function budgetScope(budget: Pick<AuthorizeBudget, 'apiKeyId' | 'model'>): AuthorizeScope {
  if (budget.apiKeyId !== null) return budget.model !== null ? 'api_key+model' : 'api_key';
  return budget.model !== null ? 'model' : 'account';
}

export interface LimitSource {
  budgetId: string;
  scope: AuthorizeScope;
  window: BudgetWindow;
  windowStart: Date;
  /** null: a total budget never resets. */
  resetsAt: Date | null;
  limitUnits: CostUnits;
  spendUnits: CostUnits;
}

export type AuthorizeDecision =
  | {
      decision: 'allow';
      /** Set when a soft budget is (or would be) over its limit: the request is allowed, the gateway is told. */
      reason?: 'soft_limit_exceeded';
      limitSource?: LimitSource;
      /** Least room left over the hard budgets after this request's hold; null when no hard budget applies. */
      remainingUnits: CostUnits | null;
    }
  | {
      decision: 'deny';
      /** 402: the committed spend alone leaves no room. 429: only holds of requests in flight fill the room. */
      status: 402 | 429;
      reason: 'budget_exceeded' | 'holds_in_flight';
      limitSource: LimitSource;
      remainingUnits: CostUnits | null;
      /** Seconds, for 429 only. */
      retryAfterSeconds?: number;
    };

export interface DecideOptions {
  now: Date;
  /** Retry-After is never more than this many seconds (a hold usually settles well before its TTL). */
  maxRetryAfterSeconds: number;
}

const maxUnits = (a: CostUnits, b: CostUnits) => (a > b ? a : b);

function limitSourceOf(p: BudgetPosition): LimitSource {
  return {
    budgetId: p.budget.id,
    scope: budgetScope(p.budget),
    window: p.budget.window,
    windowStart: p.windowStart,
    resetsAt: budgetWindowEnd(p.budget.window, p.windowStart),
    limitUnits: p.budget.limitUnits,
    spendUnits: p.spendUnits,
  };
}

/**
 * Whether a request estimated at `estimateUnits` fits the budgets that apply to it. Hard budgets
 * decide; soft ones only inform.
 *
 * For each hard budget, with spend S, holds H, estimate E and limit L:
 * - S >= L, or S + E > L: 402 budget_exceeded. Exactly reaching the limit (S + E = L) is allowed;
 *   one unit more is not. A spent budget refuses even a request estimated at 0.
 * - else S + H + E > L: 429: the request would fit once requests in flight settle (their events
 *   may cost less than their holds). Retry-After: until the earliest blocking hold expires,
 *   at least 1 s, at most maxRetryAfterSeconds.
 * A 402 on any budget wins over a 429 on another (no retry can help before that window resets).
 * Among several 402s the one that resets last is named (a total budget, then month, then day): the
 * request cannot pass before it does. Among 429s, the longest wait.
 */
export function decideAuthorize(positions: readonly BudgetPosition[], estimateUnits: CostUnits, options: DecideOptions): AuthorizeDecision {
  let exceeded: BudgetPosition | undefined;
  let transient: { position: BudgetPosition; retryAfterSeconds: number } | undefined;
  let softOver: BudgetPosition | undefined;
  let remaining: CostUnits | null = null;
  for (const p of positions) {
    const limit = p.budget.limitUnits;
    if (p.budget.enforce === 'soft') {
      if (softOver === undefined && (p.spendUnits >= limit || p.spendUnits + estimateUnits > limit)) softOver = p;
      continue;
    }
    const room = maxUnits(0n, limit - p.spendUnits - p.holdUnits);
    remaining = remaining === null || room < remaining ? room : remaining;
    if (p.spendUnits >= limit || p.spendUnits + estimateUnits > limit) {
      if (exceeded === undefined || resetsLater(p, exceeded)) exceeded = p;
    } else if (p.spendUnits + p.holdUnits + estimateUnits > limit) {
      const retryAfterSeconds = retryAfter(p.earliestHoldExpiry, options);
      if (transient === undefined || retryAfterSeconds > transient.retryAfterSeconds) transient = { position: p, retryAfterSeconds };
    }
  }
  if (exceeded !== undefined) {
    return { decision: 'deny', status: 402, reason: 'budget_exceeded', limitSource: limitSourceOf(exceeded), remainingUnits: remaining };
  }
  if (transient !== undefined) {
    return {
      decision: 'deny',
      status: 429,
      reason: 'holds_in_flight',
      limitSource: limitSourceOf(transient.position),
      remainingUnits: remaining,
      retryAfterSeconds: transient.retryAfterSeconds,
    };
  }
  const allowed: AuthorizeDecision = { decision: 'allow', remainingUnits: remaining === null ? null : remaining - estimateUnits };
  if (softOver !== undefined) {
    allowed.reason = 'soft_limit_exceeded';
    allowed.limitSource = limitSourceOf(softOver);
  }
  return allowed;
}

function resetsLater(a: BudgetPosition, b: BudgetPosition): boolean {
  const endA = budgetWindowEnd(a.budget.window, a.windowStart);
  const endB = budgetWindowEnd(b.budget.window, b.windowStart);
  if (endA === null) return endB !== null;
  return endB !== null && endA.getTime() > endB.getTime();
}

function retryAfter(expiry: Date | null, { now, maxRetryAfterSeconds }: DecideOptions): number {
  const seconds = expiry === null ? 1 : Math.ceil((expiry.getTime() - now.getTime()) / 1000);
  return Math.min(maxRetryAfterSeconds, Math.max(1, seconds));
}

/** The window of each budget that `now` falls in (the check's positions are over these). */
export function currentWindowStart(budget: Pick<AuthorizeBudget, 'window'>, now: Date): Date {
  return budgetWindowStart(budget.window, now);
}
