import type { Admin, Producer } from 'kafkajs';
import { budgetState, budgetWindowEnd, budgetWindowStart, costUnitsToString, type BudgetState } from '@tokenmeter/billing';
import { createTopicsAndWait } from '@tokenmeter/ingest';
import type { CachedBudget, SpendStateCache } from './spend-state.cache';

/** The compacted topic gateways may read instead of calling authorize (docs/limits.md). */
export const SPEND_STATE_TOPIC = 'tokenmeter.spend.state.v1';

/** One budget in a spend-state message. */
export interface BudgetStateJson {
  budget_id: string;
  model: string | null;
  window: string;
  window_start: string;
  resets_at: string | null;
  enforce: string;
  limit_usd: string;
  spend_usd: string;
  remaining_usd: string;
  state: BudgetState;
}

/** The value under key `account_id` (account-wide budgets) or `account_id/api_key_id` (one key's). */
export interface SpendStateJson {
  account_id: string;
  api_key_id: string | null;
  /** The scope as a whole: blocked if any hard budget is spent, else soft if any budget is, else ok. */
  state: BudgetState;
  budgets: BudgetStateJson[];
  on_unreachable: 'allow' | 'deny';
  as_of: string | null;
}

/** The topic key of a budget's scope. */
export function spendStateKey(accountId: string, apiKeyId: string | null): string {
  return apiKeyId === null ? accountId : `${accountId}/${apiKeyId}`;
}

/** The state of one scope, from the in-memory spend state; null when the scope has no budget left (a tombstone). */
export function spendStateOf(cache: SpendStateCache, accountId: string, apiKeyId: string | null, now: Date): SpendStateJson | null {
  const budgets = cache.budgetsOf(accountId).filter((b) => b.apiKeyId === apiKeyId);
  if (budgets.length === 0) return null;
  const states = budgets.map((b) => budgetStateJson(cache, b, now));
  const state: BudgetState = states.some((s) => s.state === 'blocked') ? 'blocked' : states.some((s) => s.state === 'soft') ? 'soft' : 'ok';
  return {
    account_id: accountId,
    api_key_id: apiKeyId,
    state,
    budgets: states,
    on_unreachable: cache.failModeOf(accountId) === 'closed' ? 'deny' : 'allow',
    as_of: cache.asOf?.toISOString() ?? null,
  };
}

function budgetStateJson(cache: SpendStateCache, b: CachedBudget, now: Date): BudgetStateJson {
  const start = budgetWindowStart(b.window, now);
  const spend = cache.spendOf(b.id, start.getTime());
  return {
    budget_id: b.id,
    model: b.model,
    window: b.window,
    window_start: start.toISOString(),
    resets_at: budgetWindowEnd(b.window, start)?.toISOString() ?? null,
    enforce: b.enforce,
    limit_usd: costUnitsToString(b.limitUnits),
    spend_usd: costUnitsToString(spend),
    remaining_usd: costUnitsToString(b.limitUnits - spend),
    state: budgetState(spend, b.limitUnits, b.enforce),
  };
}

export interface SpendStatePublisherOptions {
  /** SPEND_STATE_TOPIC unless given (tests use their own). */
  topic?: string;
  /** Changes within this long are published together, the latest state per key. */
  debounceMs?: number;
  /** Every scope is re-evaluated this often, so a window that resets at midnight is published without any usage. */
  sweepMs?: number;
  clock?: () => Date;
  onError?: (message: string, err: unknown) => void;
}

/**
 * Publishes each scope's state to the compacted topic whenever it changes (the spend state's
 * onChange), and every scope after a snapshot. A message is sent only when something other than
 * as_of changed, so an idle account costs nothing. Latest value per key wins (compaction); a
 * scope whose last budget was deleted gets a tombstone.
 */
export class SpendStatePublisher {
  private readonly pending = new Set<string>();
  private readonly lastSent = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private sweep: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly topic: string;
  private readonly debounceMs: number;
  private readonly sweepMs: number;
  private readonly clock: () => Date;
  private readonly onError: (message: string, err: unknown) => void;
  /** Known scopes (key -> account and key id), so a deleted budget's scope can be tombstoned. */
  private readonly scopes = new Map<string, { accountId: string; apiKeyId: string | null }>();
  readonly stats = { published: 0, tombstones: 0 };

  constructor(
    private readonly cache: SpendStateCache,
    private readonly producer: Producer,
    options: SpendStatePublisherOptions = {},
  ) {
    this.topic = options.topic ?? SPEND_STATE_TOPIC;
    this.debounceMs = options.debounceMs ?? 50;
    this.sweepMs = options.sweepMs ?? 30_000;
    this.clock = options.clock ?? (() => new Date());
    this.onError = options.onError ?? (() => undefined);
  }

  /** Creates the topic compacted (if missing). Call before start. */
  static async ensureTopic(admin: Admin, topic = SPEND_STATE_TOPIC, partitions = 6): Promise<void> {
    // Asking the broker to create a topic it has makes kafkajs log an ERROR on every start.
    if ((await admin.listTopics()).includes(topic)) return;
    await createTopicsAndWait(admin, [{ topic, numPartitions: partitions, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }]);
  }

  start(): void {
    this.unsubscribe = this.cache.onChange((budgetIds, cause) => {
      if (cause === 'snapshot') this.markAll();
      for (const id of budgetIds) {
        const b = this.cache.getBudget(id);
        if (b) this.mark(b.accountId, b.apiKeyId);
      }
      // A deleted budget is gone from the cache: re-evaluate every scope we have published.
      if (cause === 'budget') for (const [key, s] of this.scopes) if (!this.pending.has(key)) this.mark(s.accountId, s.apiKeyId);
      this.schedule();
    });
    this.sweep = setInterval(() => {
      this.markAll();
      this.schedule();
    }, this.sweepMs);
    this.markAll();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.sweep) clearInterval(this.sweep);
    await this.flushing;
  }

  /** Publishes what is pending now (tests call it instead of waiting for the debounce). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.publishPending()).catch((err) => this.onError('spend state: publish failed', err));
    return this.flushing;
  }

  private mark(accountId: string, apiKeyId: string | null): void {
    const key = spendStateKey(accountId, apiKeyId);
    this.scopes.set(key, { accountId, apiKeyId });
    this.pending.add(key);
  }

  private markAll(): void {
    if (!this.cache.ready) return;
    for (const key of this.scopes.keys()) this.pending.add(key);
    for (const b of this.cache.allBudgets()) this.mark(b.accountId, b.apiKeyId);
  }

  private schedule(): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.debounceMs);
  }

  private async publishPending(): Promise<void> {
    if (!this.cache.ready) return;
    const keys = [...this.pending];
    this.pending.clear();
    const now = this.clock();
    const messages: { key: string; value: string | null }[] = [];
    for (const key of keys) {
      const scope = this.scopes.get(key)!;
      const state = spendStateOf(this.cache, scope.accountId, scope.apiKeyId, now);
      const fingerprint = state === null ? 'null' : JSON.stringify({ ...state, as_of: null });
      if (this.lastSent.get(key) === fingerprint) continue;
      messages.push({ key, value: state === null ? null : JSON.stringify(state) });
      this.lastSent.set(key, fingerprint);
    }
    if (messages.length === 0) return;
    try {
      await this.producer.send({ topic: this.topic, messages });
    } catch (err) {
      // Not sent: forget what we thought we sent, so the next flush tries again.
      for (const m of messages) {
        this.lastSent.delete(m.key);
        this.pending.add(m.key);
      }
      this.schedule();
      throw err;
    }
    for (const m of messages) if (m.value === null) this.scopes.delete(m.key);
    this.stats.published += messages.length;
    this.stats.tombstones += messages.filter((m) => m.value === null).length;
  }
}
