import type { Client, Notification } from 'pg';
import { parseCostUnits, usd, toCostUnits, budgetWindowStart, type AuthorizeBudget, type CostUnits } from '@tokenmeter/billing';
import type { SpendBudgetRecord, SpendSnapshot, SpendStateRepository, SpendWindowRecord } from '@tokenmeter/db';
import { ListenConnection } from './listen-connection';

/** The notification channels of docs/limits.md ("Notifications (contract)"). */
export const BUDGET_SPEND_CHANNEL = 'tokenmeter_budget_spend';
export const BUDGETS_CHANNEL = 'tokenmeter_budgets';

export interface CachedBudget extends AuthorizeBudget {
  countsFrom: Date;
}

interface WindowState {
  spendUnits: CostUnits;
  version: bigint;
}

export type SpendFailMode = 'open' | 'closed';

export interface SpendStateCacheOptions {
  databaseUrl: string;
  /** A `SELECT 1` on the listen connection this often: when it answers, every commit before it was sent has been notified. */
  heartbeatMs?: number;
  /** A heartbeat unanswered this long means the connection is gone (a silent network failure), and it is replaced. */
  heartbeatTimeoutMs?: number;
  /** accounts.spend_fail_mode has no notification: it is re-read this often. */
  failModeRefreshMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  clock?: () => Date;
  onError?: (message: string, err: unknown) => void;
}

export type SpendStateListener = (budgetIds: ReadonlySet<string>, cause: 'spend' | 'budget' | 'snapshot') => void;

/**
 * The budgets, their window spend and the accounts' fail modes, in memory (docs/limits.md,
 * "Freshness: what as_of means"). A dedicated connection (not the pool: a pooled client would be
 * handed to others and lose its LISTEN) listens on the spend and budget channels; the snapshot is
 * loaded after LISTEN, so no change can fall between the two, and a window's spend is only ever
 * replaced by a higher version, so a notification delivered after the snapshot that loaded a newer
 * value cannot take it back. On any loss of the connection it reconnects with back-off and loads
 * the whole snapshot again.
 */
export class SpendStateCache {
  private budgets = new Map<string, CachedBudget>();
  private budgetsByAccount = new Map<string, CachedBudget[]>();
  /** budget id -> window start (ms) -> spend. */
  private windows = new Map<string, Map<number, WindowState>>();
  private closedAccounts = new Set<string>();
  private listeners = new Set<SpendStateListener>();
  private readonly listen: ListenConnection;
  private loaded = false;
  private asOfMs: number | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private heartbeatSentAt: number | null = null;
  private lastFailModeRefresh = 0;
  private pendingBudgetReloads = new Set<string>();
  private budgetReload: Promise<void> | undefined;
  private readonly opts: Required<Omit<SpendStateCacheOptions, 'onError' | 'clock' | 'databaseUrl' | 'reconnectMinMs' | 'reconnectMaxMs'>>;
  private readonly clock: () => Date;
  private readonly onError: (message: string, err: unknown) => void;
  /** Counters, for tests and metrics. */
  readonly stats = { connects: 0, snapshots: 0, spendNotifications: 0, budgetReloads: 0, staleIgnored: 0 };

  constructor(
    private readonly repository: SpendStateRepository,
    options: SpendStateCacheOptions,
  ) {
    this.opts = {
      heartbeatMs: options.heartbeatMs ?? 1000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 5000,
      failModeRefreshMs: options.failModeRefreshMs ?? 10_000,
    };
    this.clock = options.clock ?? (() => new Date());
    this.onError = options.onError ?? (() => undefined);
    this.listen = new ListenConnection({
      databaseUrl: options.databaseUrl,
      applicationName: 'tokenmeter-spend-state',
      channels: [BUDGET_SPEND_CHANNEL, BUDGETS_CHANNEL],
      name: 'spend state',
      onConnected: (client) => this.loadSnapshot(client),
      onNotification: (msg) => this.onNotification(msg),
      onDisconnected: () => this.stopHeartbeat(),
      reconnectMinMs: options.reconnectMinMs,
      reconnectMaxMs: options.reconnectMaxMs,
      onError: this.onError,
    });
  }

  /** Connects, listens and loads the first snapshot; if the database is unreachable, keeps trying in the background and resolves at once. */
  start(): Promise<void> {
    return this.listen.start();
  }

  async stop(): Promise<void> {
    this.stopHeartbeat();
    await this.listen.stop();
    await this.budgetReload?.catch(() => undefined);
  }

  /** Whether a snapshot has been loaded (before that the state is unknown, not empty). */
  get ready(): boolean {
    return this.loaded;
  }

  get connected(): boolean {
    return this.listen.client !== undefined;
  }

  /**
   * The latest instant up to which every committed change is known here: when the last snapshot
   * was read, or when the last answered heartbeat was sent. null before the first snapshot.
   */
  get asOf(): Date | null {
    return this.asOfMs === null ? null : new Date(this.asOfMs);
  }

  budgetsOf(accountId: string): readonly CachedBudget[] {
    return this.budgetsByAccount.get(accountId) ?? [];
  }

  /** Every live budget (the spend-state publisher's sweep). */
  allBudgets(): IterableIterator<CachedBudget> {
    return this.budgets.values();
  }

  getBudget(id: string): CachedBudget | undefined {
    return this.budgets.get(id);
  }

  /** The budget's spend in the window starting at `windowStartMs`: 0 until a row exists (ingest creates it with the first event). */
  spendOf(budgetId: string, windowStartMs: number): CostUnits {
    return this.windows.get(budgetId)?.get(windowStartMs)?.spendUnits ?? 0n;
  }

  windowVersion(budgetId: string, windowStartMs: number): bigint | undefined {
    return this.windows.get(budgetId)?.get(windowStartMs)?.version;
  }

  failModeOf(accountId: string): SpendFailMode {
    return this.closedAccounts.has(accountId) ? 'closed' : 'open';
  }

  /** `listener` hears which budgets' spend or definition changed; returns the unsubscribe. */
  onChange(listener: SpendStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies window rows read elsewhere (the hold settlement), higher versions only. Returns the budgets that changed. */
  applyWindows(records: readonly SpendWindowRecord[], cause: 'spend' | 'snapshot' = 'spend'): Set<string> {
    const changed = new Set<string>();
    for (const r of records) {
      if (this.applyWindow(r.budgetId, r.windowStartMs, parseCostUnits(r.spendUsd, 'spend_usd'), BigInt(r.version))) changed.add(r.budgetId);
    }
    this.emit(changed, cause);
    return changed;
  }

  private applyWindow(budgetId: string, windowStartMs: number, spendUnits: CostUnits, version: bigint): boolean {
    let byStart = this.windows.get(budgetId);
    if (byStart === undefined) {
      byStart = new Map();
      this.windows.set(budgetId, byStart);
    }
    const held = byStart.get(windowStartMs);
    if (held !== undefined && held.version >= version) {
      if (held.version > version) this.stats.staleIgnored++;
      return false;
    }
    byStart.set(windowStartMs, { spendUnits, version });
    return true;
  }

  private emit(ids: Set<string>, cause: 'spend' | 'budget' | 'snapshot'): void {
    if (ids.size === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(ids, cause);
      } catch (err) {
        this.onError('spend state: a change listener failed', err);
      }
    }
  }

  /** After LISTEN (the connection's onConnected): whatever commits from now on is notified, whatever committed before is in the snapshot. */
  private async loadSnapshot(client: Client): Promise<void> {
    this.stats.connects++;
    const readAt = this.clock();
    const snapshot = await this.repository.loadSpendSnapshot(readAt);
    if (this.listen.client !== client) return; // lost meanwhile; the reconnect loads again
    this.applySnapshot(snapshot, readAt);
    this.lastFailModeRefresh = readAt.getTime();
    this.heartbeatSentAt = null;
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => this.beat(client), this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private applySnapshot(snapshot: SpendSnapshot, readAt: Date): void {
    const budgets = new Map<string, CachedBudget>();
    for (const r of snapshot.budgets) budgets.set(r.id, toCachedBudget(r));
    const changed = new Set<string>([...budgets.keys(), ...this.budgets.keys()]);
    this.budgets = budgets;
    this.reindexAccounts();
    for (const id of [...this.windows.keys()]) if (!budgets.has(id)) this.windows.delete(id);
    for (const r of snapshot.windows) this.applyWindow(r.budgetId, r.windowStartMs, parseCostUnits(r.spendUsd, 'spend_usd'), BigInt(r.version));
    this.pruneWindows(readAt);
    this.closedAccounts = new Set(snapshot.closedAccounts);
    this.loaded = true;
    this.stats.snapshots++;
    this.asOfMs = Math.max(this.asOfMs ?? 0, readAt.getTime());
    this.emit(changed, 'snapshot');
  }

  private reindexAccounts(): void {
    const byAccount = new Map<string, CachedBudget[]>();
    for (const b of this.budgets.values()) {
      const list = byAccount.get(b.accountId) ?? [];
      list.push(b);
      byAccount.set(b.accountId, list);
    }
    this.budgetsByAccount = byAccount;
  }

  /** Keeps each budget's current and previous windows (late events count in the previous one). */
  private pruneWindows(now: Date): void {
    for (const [id, byStart] of this.windows) {
      const budget = this.budgets.get(id);
      if (budget === undefined || budget.window === 'total') continue;
      const current = budgetWindowStart(budget.window, now).getTime();
      const previous = budgetWindowStart(budget.window, new Date(current - 1)).getTime();
      for (const start of byStart.keys()) if (start < previous) byStart.delete(start);
    }
  }

  private onNotification(msg: Notification): void {
    if (msg.channel === BUDGET_SPEND_CHANNEL) {
      this.stats.spendNotifications++;
      const changed = new Set<string>();
      for (const line of (msg.payload ?? '').split('\n')) {
        if (line === '') continue;
        const [budgetId, startMs, spendUsd, version] = line.split(' ');
        try {
          if (this.applyWindow(budgetId, Number(startMs), parseCostUnits(spendUsd, 'spend_usd'), BigInt(version))) changed.add(budgetId);
        } catch (err) {
          this.onError(`spend state: unreadable spend notification line ${JSON.stringify(line)}`, err);
        }
      }
      this.emit(changed, 'spend');
    } else if (msg.channel === BUDGETS_CHANNEL && msg.payload) {
      this.pendingBudgetReloads.add(msg.payload);
      this.budgetReload ??= this.reloadBudgets().finally(() => (this.budgetReload = undefined));
    }
  }

  /** Reloads notified budgets one batch at a time; a failure leaves them pending for the next notification or snapshot. */
  private async reloadBudgets(): Promise<void> {
    while (this.pendingBudgetReloads.size > 0 && !this.listen.stopped) {
      const ids = [...this.pendingBudgetReloads];
      this.pendingBudgetReloads.clear();
      const now = this.clock();
      let state: Awaited<ReturnType<SpendStateRepository['listBudgetStates']>>;
      try {
        state = await this.repository.listBudgetStates(ids, now);
      } catch (err) {
        this.onError('spend state: could not reload budgets; the next snapshot will', err);
        return;
      }
      const found = new Set<string>();
      for (const r of state.budgets) {
        found.add(r.id);
        if (r.deleted) {
          this.budgets.delete(r.id);
          this.windows.delete(r.id);
        } else {
          this.budgets.set(r.id, toCachedBudget(r));
        }
      }
      for (const id of ids) {
        if (!found.has(id)) {
          this.budgets.delete(id);
          this.windows.delete(id);
        }
      }
      for (const w of state.windows) {
        if (this.budgets.has(w.budgetId)) this.applyWindow(w.budgetId, w.windowStartMs, parseCostUnits(w.spendUsd, 'spend_usd'), BigInt(w.version));
      }
      this.reindexAccounts();
      this.stats.budgetReloads++;
      this.emit(new Set(ids), 'budget');
    }
  }

  private beat(client: Client): void {
    if (client !== this.listen.client) return;
    const now = Date.now();
    if (this.heartbeatSentAt !== null) {
      if (now - this.heartbeatSentAt > this.opts.heartbeatTimeoutMs) this.listen.drop(client, new Error(`heartbeat unanswered for ${now - this.heartbeatSentAt} ms`));
      return;
    }
    const sentAt = this.clock().getTime();
    this.heartbeatSentAt = now;
    client.query('SELECT 1').then(
      () => {
        if (client !== this.listen.client) return;
        this.heartbeatSentAt = null;
        // Notifications are delivered before the answer to a later query, so every commit before sentAt is applied.
        this.asOfMs = Math.max(this.asOfMs ?? 0, sentAt);
      },
      (err) => this.listen.drop(client, err),
    );
    if (now - this.lastFailModeRefresh >= this.opts.failModeRefreshMs) {
      this.lastFailModeRefresh = now;
      this.pruneWindows(this.clock());
      this.repository.listClosedAccounts(client).then(
        (ids) => {
          if (client === this.listen.client) this.closedAccounts = new Set(ids);
        },
        (err) => this.onError('spend state: could not refresh fail modes', err),
      );
    }
  }
}

function toCachedBudget(r: SpendBudgetRecord): CachedBudget {
  return {
    id: r.id,
    accountId: r.accountId,
    apiKeyId: r.apiKeyId,
    model: r.model,
    limitUnits: toCostUnits(usd(r.limitUsd), 'limit_usd'),
    window: r.window,
    enforce: r.enforce,
    countsFrom: r.countsFrom,
  };
}
