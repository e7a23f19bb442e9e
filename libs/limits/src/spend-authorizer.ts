import {
  applicableBudgets,
  currentWindowStart,
  decideAuthorize,
  estimateHold,
  type AuthorizeRequest,
  type BudgetPosition,
  type CostUnits,
  type LimitSource,
  type ModelLimits,
  type OverrideBook,
  type PriceBook,
} from '@tokenmeter/billing';
import type { HeldRequest, SpendStateRepository } from '@tokenmeter/db';
import type { CreditState } from './credit-state';
import { HoldBook, type Hold } from './holds';
import type { SpendFailMode, SpendStateCache } from './spend-state.cache';

/** The pricing the estimate needs (libs/ingest's PricingContext fits). */
export interface AuthorizePricing {
  book: PriceBook;
  overrides: OverrideBook;
  limits: Map<string, ModelLimits>;
}

export interface AuthorizeInput extends AuthorizeRequest {
  requestId: string;
}

/** A prepaid-only account's credits decided (docs/credits.md, "Prepaid-only accounts and authorize"). */
export interface CreditsLimitSource {
  type: 'credits';
  /** What the account's grants covering the request's model have left now (holds not included). */
  availableUnits: CostUnits;
  /** Held by the account's requests in flight. */
  heldUnits: CostUnits;
}

/** The key a prepaid-only account's holds are counted under, beside its budgets' ids. */
export const creditsHoldKey = (accountId: string) => `credits\n${accountId}`;

export interface AuthorizeAnswer {
  decision: 'allow' | 'deny';
  status: 200 | 402 | 429;
  reason?: 'budget_exceeded' | 'holds_in_flight' | 'soft_limit_exceeded' | 'credits_exhausted';
  limitSource?: LimitSource | CreditsLimitSource;
  remainingUnits: CostUnits | null;
  holdUnits: CostUnits;
  asOf: Date;
  onUnreachable: 'allow' | 'deny';
  retryAfterSeconds?: number;
}

export interface SpendAuthorizerOptions {
  /** How long a hold lives at most (its event never came, and the watermark did not say so). */
  holdTtlMs: number;
  /** A hold is released once ingestion (the watermark) has passed its time by this much. */
  holdGraceMs: number;
  /** Output tokens estimated when neither the request nor the model gives a maximum. */
  fallbackMaxOutputTokens: number;
  /** A hold's event is looked for from this long before the hold (the gateway's clock may be behind ours). */
  clockSkewMs: number;
  maxRetryAfterSeconds: number;
  /**
   * The usage topic whose ingest_progress is the watermark, and how many partitions it has (all
   * must report). A function is asked at each settlement: the API passes the count the broker
   * reports (UsageTopicPartitions), not the setting, so a topic made with another count still settles.
   */
  topic: string;
  topicPartitions: number | (() => number);
  /** How often TTL and watermark release run. */
  sweepMs?: number;
  /** Settlement statements run at most this often (default 200 ms). */
  settleIntervalMs?: number;
  /** Holds probed by one settlement statement at most (default 1000). */
  maxHoldsPerSettle?: number;
  /** How often the price book is re-read (a cheap revision check; the book reloads only when it changed). */
  pricingRefreshMs?: number;
  clock?: () => number;
  onError?: (message: string, err: unknown) => void;
}

/** Thrown while no snapshot has been loaded yet: the state is unknown, not empty. */
export class SpendStateUnavailableError extends Error {
  constructor() {
    super('spend state not loaded yet');
    this.name = 'SpendStateUnavailableError';
  }
}

/**
 * POST /v1/spend/authorize's engine: answers from memory (SpendStateCache + the holds here), with
 * no database round trip on the request path. authorize() is synchronous, so in one Node process
 * checking a request and taking its hold is atomic: two concurrent requests can never both see
 * the same room (docs/limits.md, "Holds").
 */
export class SpendAuthorizer {
  readonly holds = new HoldBook();
  private pricing: AuthorizePricing | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private pricingTimer: NodeJS.Timeout | undefined;
  private pendingAccounts = new Set<string>();
  private settling: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private unsubscribeCredits: (() => void) | undefined;
  private stopped = false;
  private readonly clock: () => number;
  private readonly onError: (message: string, err: unknown) => void;
  readonly stats = { settleRuns: 0, releasedByEvent: 0, releasedByWatermark: 0, releasedByTtl: 0 };

  constructor(
    private readonly cache: SpendStateCache,
    private readonly repository: SpendStateRepository,
    private readonly loadPricing: () => Promise<AuthorizePricing>,
    private readonly options: SpendAuthorizerOptions,
    /** Prepaid-only accounts' credits; without it no account is treated as prepaid-only. */
    private readonly credits?: CreditState,
  ) {
    this.clock = options.clock ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
  }

  /** Subscribes to the cache (start it too) and loads the price book; a price book that cannot be read yet is retried by the refresh. */
  async start(): Promise<void> {
    this.unsubscribe = this.cache.onChange((ids, cause) => this.onSpendChange(ids, cause));
    this.unsubscribeCredits = this.credits?.onChange((accounts) => this.onCreditsChange(accounts));
    this.sweeper = setInterval(() => this.sweep(), this.options.sweepMs ?? 1000);
    this.sweeper.unref();
    this.pricingTimer = setInterval(() => void this.refreshPricing(), this.options.pricingRefreshMs ?? 5000);
    this.pricingTimer.unref();
    await this.refreshPricing();
  }

  private topicPartitions(): number {
    const p = this.options.topicPartitions;
    return typeof p === 'number' ? p : p();
  }

  async stop(): Promise<void> {
    // The settle loop runs while accounts are pending, and with more candidates than one statement
    // probes it re-queues them: without this it never ended once the sweeper (TTL release) was stopped.
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribeCredits?.();
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.pricingTimer) clearInterval(this.pricingTimer);
    await this.settling?.catch(() => undefined);
  }

  /** Whether authorize can answer: a snapshot and a price book are loaded. */
  get ready(): boolean {
    return this.cache.ready && this.pricing !== undefined && (this.credits?.ready ?? true);
  }

  private async refreshPricing(): Promise<void> {
    try {
      this.pricing = await this.loadPricing();
    } catch (err) {
      this.onError('authorize: could not load the price book; keeping the one in memory', err);
    }
  }

  authorize(input: AuthorizeInput): AuthorizeAnswer {
    const asOf = this.cache.asOf;
    // Credits unknown (not loaded yet) is not "no prepaid-only accounts": the state is unavailable.
    if (!this.cache.ready || asOf === null || this.pricing === undefined || (this.credits !== undefined && !this.credits.ready)) {
      throw new SpendStateUnavailableError();
    }
    const nowMs = this.clock();
    const now = new Date(nowMs);
    const onUnreachable = failAnswer(this.cache.failModeOf(input.accountId));
    const budgets = applicableBudgets(this.cache.budgetsOf(input.accountId), input);
    const existing = this.holds.get(input.accountId, input.requestId);
    if (existing !== undefined) {
      // The same request asking again (a gateway retry): the same hold, never a second one.
      return { decision: 'allow', status: 200, remainingUnits: this.remaining(budgets, now), holdUnits: existing.units, asOf, onUnreachable };
    }
    const estimate = estimateHold(
      this.pricing.book,
      this.pricing.overrides,
      this.pricing.limits.get(input.model),
      this.options.fallbackMaxOutputTokens,
      input,
      now,
    );
    // A prepaid-only account: its credits covering this model now must hold the estimate and the
    // account's holds in flight, like a hard budget (402 with no room, 429 when holds fill it).
    let creditsRemaining: CostUnits | null = null;
    const prepaid = this.credits?.isPrepaidOnly(input.accountId) ?? false;
    if (prepaid) {
      const key = creditsHoldKey(input.accountId);
      const availableUnits = this.credits!.coveringUnits(input.accountId, input.model, now);
      const heldUnits = this.holds.unitsOn(key);
      const source: CreditsLimitSource = { type: 'credits', availableUnits, heldUnits };
      const room = availableUnits - heldUnits;
      if (availableUnits === 0n || availableUnits < estimate.units) {
        return { decision: 'deny', status: 402, reason: 'credits_exhausted', limitSource: source, remainingUnits: room < 0n ? 0n : room, holdUnits: 0n, asOf, onUnreachable };
      }
      if (room < estimate.units) {
        const expiry = this.holds.earliestExpiryOn(key);
        const seconds = expiry === null ? 1 : Math.ceil((expiry - nowMs) / 1000);
        return {
          decision: 'deny',
          status: 429,
          reason: 'holds_in_flight',
          limitSource: source,
          remainingUnits: room < 0n ? 0n : room,
          holdUnits: 0n,
          asOf,
          onUnreachable,
          retryAfterSeconds: Math.min(this.options.maxRetryAfterSeconds, Math.max(1, seconds)),
        };
      }
      creditsRemaining = room - estimate.units;
    }
    const holdKeys = prepaid ? [...budgets.map((b) => b.id), creditsHoldKey(input.accountId)] : budgets.map((b) => b.id);
    if (budgets.length === 0) {
      if (!prepaid) return { decision: 'allow', status: 200, remainingUnits: null, holdUnits: 0n, asOf, onUnreachable };
      this.takeHold(input, estimate.units, holdKeys, nowMs);
      return { decision: 'allow', status: 200, remainingUnits: creditsRemaining, holdUnits: estimate.units, asOf, onUnreachable };
    }
    const positions: BudgetPosition[] = budgets.map((budget) => {
      const windowStart = currentWindowStart(budget, now);
      const expiry = this.holds.earliestExpiryOn(budget.id);
      return {
        budget,
        windowStart,
        spendUnits: this.cache.spendOf(budget.id, windowStart.getTime()),
        holdUnits: this.holds.unitsOn(budget.id),
        earliestHoldExpiry: expiry === null ? null : new Date(expiry),
      };
    });
    const decision = decideAuthorize(positions, estimate.units, { now, maxRetryAfterSeconds: this.options.maxRetryAfterSeconds });
    if (decision.decision === 'deny') {
      return {
        decision: 'deny',
        status: decision.status,
        reason: decision.reason,
        limitSource: decision.limitSource,
        remainingUnits: decision.remainingUnits,
        holdUnits: 0n,
        asOf,
        onUnreachable,
        retryAfterSeconds: decision.retryAfterSeconds,
      };
    }
    this.takeHold(input, estimate.units, holdKeys, nowMs);
    const budgetRemaining = decision.remainingUnits;
    const remainingUnits =
      creditsRemaining === null || (budgetRemaining !== null && budgetRemaining < creditsRemaining) ? budgetRemaining : creditsRemaining;
    const answer: AuthorizeAnswer = { decision: 'allow', status: 200, remainingUnits, holdUnits: estimate.units, asOf, onUnreachable };
    if (decision.reason !== undefined) {
      answer.reason = decision.reason;
      answer.limitSource = decision.limitSource;
    }
    return answer;
  }

  private takeHold(input: AuthorizeInput, units: CostUnits, keys: string[], nowMs: number): void {
    this.holds.add({
      accountId: input.accountId,
      requestId: input.requestId,
      units,
      budgetIds: keys,
      createdAtMs: nowMs,
      expiresAtMs: nowMs + this.options.holdTtlMs,
    });
  }

  /** A prepaid-only account's credits were recomputed: the events of its holds may be stored now. */
  private onCreditsChange(accounts: ReadonlySet<string>): void {
    for (const a of accounts) if (this.holds.hasHoldsOn(creditsHoldKey(a))) this.pendingAccounts.add(a);
    if (this.pendingAccounts.size > 0) this.scheduleSettle();
  }

  private remaining(budgets: ReturnType<SpendStateCache['budgetsOf']>, now: Date): CostUnits | null {
    let remaining: CostUnits | null = null;
    for (const b of budgets) {
      if (b.enforce !== 'hard') continue;
      const room = b.limitUnits - this.cache.spendOf(b.id, currentWindowStart(b, now).getTime()) - this.holds.unitsOn(b.id);
      const clamped = room < 0n ? 0n : room;
      if (remaining === null || clamped < remaining) remaining = clamped;
    }
    return remaining;
  }

  /** Spend changed on budgets some holds sit on: their events may be stored now. */
  private onSpendChange(ids: ReadonlySet<string>, cause: string): void {
    if (cause === 'budget') return;
    for (const id of ids) {
      if (!this.holds.hasHoldsOn(id)) continue;
      const budget = this.cache.getBudget(id);
      if (budget) this.pendingAccounts.add(budget.accountId);
    }
    if (this.pendingAccounts.size > 0) this.scheduleSettle();
  }

  private scheduleSettle(): void {
    this.settling ??= this.settleLoop().finally(() => (this.settling = undefined));
  }

  /**
   * One settlement at a time, at most one per settleIntervalMs: notifications that arrive
   * meanwhile are gathered into the next, so a busy ingest costs a few statements a second, not
   * one per chunk. Each statement probes at most maxHoldsPerSettle holds: pending accounts are
   * taken in the order they became pending, each account's holds oldest first, and a probed hold
   * that stays goes to the end of its account's order (HoldBook.requeue), so holds whose events
   * never come cannot starve the others. An account leaves the pending set only when all its holds
   * were in a batch. The work per statement is bounded by the cap, not by the holds pending.
   */
  private async settleLoop(): Promise<void> {
    const interval = this.options.settleIntervalMs ?? 200;
    const cap = this.options.maxHoldsPerSettle ?? 1000;
    while (this.pendingAccounts.size > 0 && !this.stopped) {
      const batch: Hold[] = [];
      for (const account of this.pendingAccounts) {
        let whole = true;
        for (const hold of this.holds.ofAccount(account)) {
          if (batch.length >= cap) {
            whole = false;
            break;
          }
          batch.push(hold);
        }
        if (!whole) break;
        this.pendingAccounts.delete(account);
      }
      if (batch.length > 0) await this.settle(batch);
      if (this.pendingAccounts.size > 0 && !this.stopped) await new Promise((r) => setTimeout(r, interval));
    }
  }

  /**
   * The exactness rule: a hold is released only together with a spend that includes its event.
   * One statement reads both (settleHolds); the spend is applied (newer versions only) before the
   * holds are released, in the same tick, so no authorize can run between the two.
   */
  async settle(candidates: readonly Hold[]): Promise<void> {
    const nowMs = this.clock();
    const now = new Date(nowMs);
    const windows = new Map<string, { budgetId: string; windowStartMs: number }>();
    for (const hold of candidates) {
      for (const id of hold.budgetIds) {
        const budget = this.cache.getBudget(id);
        if (budget === undefined) continue;
        for (const at of [now, new Date(hold.createdAtMs)]) {
          const startMs = currentWindowStart(budget, at).getTime();
          windows.set(`${id} ${startMs}`, { budgetId: id, windowStartMs: startMs });
        }
      }
    }
    const held: HeldRequest[] = candidates.map((h) => ({
      accountId: h.accountId,
      requestId: h.requestId,
      since: new Date(h.createdAtMs - this.options.clockSkewMs),
    }));
    this.stats.settleRuns++;
    let result: Awaited<ReturnType<SpendStateRepository['settleHolds']>>;
    try {
      result = await this.repository.settleHolds(held, [...windows.values()], { topic: this.options.topic, partitions: this.topicPartitions() });
    } catch (err) {
      this.onError('authorize: could not settle holds; the next sweep tries again', err);
      return;
    }
    this.cache.applyWindows(result.windows);
    // Credits, like budget windows, must include a hold's event before the hold goes: recompute
    // the prepaid accounts concerned from reads that start after settleHolds' read.
    const creditAccounts = [...new Set(candidates.filter((h) => this.holds.hasHoldsOn(creditsHoldKey(h.accountId))).map((h) => h.accountId))];
    if (creditAccounts.length > 0 && this.credits !== undefined) {
      try {
        await this.credits.refresh(creditAccounts);
      } catch (err) {
        this.onError('authorize: could not recompute credits; holds stay until the next settlement', err);
        return;
      }
    }
    const watermarkMs = result.watermark?.getTime() ?? null;
    for (const hold of candidates) {
      if (result.stored.has(`${hold.accountId}\n${hold.requestId}`)) {
        if (this.holds.release(hold)) this.stats.releasedByEvent++;
      } else if (watermarkMs !== null && watermarkMs >= hold.createdAtMs + this.options.holdGraceMs) {
        // Ingestion is past the hold's time (and a grace) on every partition: its event is not coming.
        if (this.holds.release(hold)) this.stats.releasedByWatermark++;
      } else {
        this.holds.requeue(hold);
      }
    }
  }

  /** Every second: TTL release, and the watermark check for holds older than the grace. */
  private sweep(): void {
    const nowMs = this.clock();
    this.stats.releasedByTtl += this.holds.expire(nowMs).length;
    if (this.settling !== undefined) return;
    const old = this.holds.takenBy(nowMs - this.options.holdGraceMs, this.options.maxHoldsPerSettle ?? 1000);
    if (old.length === 0) return;
    this.settling = this.settle(old).finally(() => {
      this.settling = undefined;
      if (this.pendingAccounts.size > 0) this.scheduleSettle();
    });
  }
}

function failAnswer(mode: SpendFailMode): 'allow' | 'deny' {
  return mode === 'closed' ? 'deny' : 'allow';
}
