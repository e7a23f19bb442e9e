import type { Notification } from 'pg';
import type { CostUnits } from '@tokenmeter/billing';
import { CREDIT_GRANTS_CHANNEL, CREDIT_USAGE_CHANNEL } from '@tokenmeter/db';
import { coveringUnits, type CreditPoolBalance } from './credits.service';
import { ListenConnection } from './listen-connection';

/** Where the credit state reads from (CreditsService and the accounts table). */
export interface CreditStateSource {
  listPrepaidOnlyAccountIds(): Promise<string[]>;
  isPrepaidOnly(accountId: string): Promise<boolean>;
  /** The account's grants that can still pay for usage, each with exactly what is left (CreditsService.poolsForAuthorize). */
  poolsOf(accountId: string, now: Date): Promise<CreditPoolBalance[]>;
}

export interface CreditStateOptions {
  databaseUrl: string;
  /** Accounts recomputed at once (each recompute is a few reads). */
  concurrency?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  clock?: () => Date;
  onError?: (message: string, err: unknown) => void;
}

interface AccountCredits {
  pools: CreditPoolBalance[];
  /** The read sequence number it was computed from: an older read never replaces a newer one. */
  seq: number;
}

/**
 * The available credits of prepaid-only accounts, in memory, for /v1/spend/authorize
 * (docs/credits.md, "Prepaid-only accounts and authorize"). Only prepaid-only accounts are kept.
 *
 * A dedicated connection LISTENs on tokenmeter_credit_usage (the ingest transaction names the
 * accounts whose usage it stored) and tokenmeter_credit_grants (a grant created, voided or
 * activated, or an account's prepaid_only changed); a notified account is recomputed off the
 * request path with the same allocation as GET /v1/credits, one recompute per account at a time,
 * notifications arriving meanwhile gathered into the next. After LISTEN (at start and after every
 * reconnect) it recomputes every prepaid-only account, so nothing committed while it was away is
 * missed. Nothing polls.
 */
export class CreditState {
  private accounts = new Map<string, AccountCredits>();
  private prepaid = new Set<string>();
  private pending = new Set<string>();
  /** Notified by the grants channel: whether they are prepaid-only is read again. */
  private recheck = new Set<string>();
  private reloading: Promise<void> | undefined;
  private readonly listen: ListenConnection;
  private loaded = false;
  private seq = 0;
  private listeners = new Set<(accountIds: ReadonlySet<string>) => void>();
  private readonly clock: () => Date;
  private readonly onError: (message: string, err: unknown) => void;
  readonly stats = { connects: 0, snapshots: 0, usageNotifications: 0, grantNotifications: 0, recomputes: 0 };

  constructor(
    private readonly source: CreditStateSource,
    private readonly options: CreditStateOptions,
  ) {
    this.clock = options.clock ?? (() => new Date());
    this.onError = options.onError ?? (() => undefined);
    this.listen = new ListenConnection({
      databaseUrl: options.databaseUrl,
      applicationName: 'tokenmeter-credit-state',
      channels: [CREDIT_USAGE_CHANNEL, CREDIT_GRANTS_CHANNEL],
      name: 'credit state',
      onConnected: () => this.loadAll(),
      onNotification: (msg) => this.onNotification(msg),
      reconnectMinMs: options.reconnectMinMs,
      reconnectMaxMs: options.reconnectMaxMs,
      onError: this.onError,
    });
  }

  /** Connects, listens and loads every prepaid-only account; if the database is unreachable, keeps trying in the background and resolves at once. */
  start(): Promise<void> {
    return this.listen.start();
  }

  async stop(): Promise<void> {
    await this.listen.stop();
    await this.reloading?.catch(() => undefined);
  }

  /** Whether the prepaid-only accounts have been loaded (before that their credits are unknown, not zero). */
  get ready(): boolean {
    return this.loaded;
  }

  isPrepaidOnly(accountId: string): boolean {
    return this.prepaid.has(accountId);
  }

  /** What the account's grants covering `model` at `at` have left, exactly (0 when none). */
  coveringUnits(accountId: string, model: string, at: Date): CostUnits {
    return coveringUnits(this.accounts.get(accountId)?.pools ?? [], at, model);
  }

  pools(accountId: string): readonly CreditPoolBalance[] {
    return this.accounts.get(accountId)?.pools ?? [];
  }

  /** `listener` hears which accounts' credits were recomputed after a notification; returns the unsubscribe. */
  onChange(listener: (accountIds: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Recomputes these accounts now, from reads that start after this call (the hold settlement:
   * a hold is released only once the credits include its event). Does not notify listeners.
   */
  async refresh(accountIds: readonly string[]): Promise<void> {
    await this.recompute(accountIds.filter((id) => this.prepaid.has(id)));
  }

  private async recompute(accountIds: readonly string[]): Promise<Set<string>> {
    const changed = new Set<string>();
    const queue = [...accountIds];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const seq = ++this.seq;
        const pools = await this.source.poolsOf(id, this.clock());
        this.stats.recomputes++;
        const held = this.accounts.get(id);
        if (held !== undefined && held.seq > seq) continue;
        if (!this.prepaid.has(id)) continue;
        this.accounts.set(id, { pools, seq });
        changed.add(id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 4, queue.length) }, worker));
    return changed;
  }

  /** After LISTEN (the connection's onConnected): whatever commits from now on is notified, whatever committed before is read here. */
  private async loadAll(): Promise<void> {
    this.stats.connects++;
    const ids = await this.source.listPrepaidOnlyAccountIds();
    this.prepaid = new Set(ids);
    for (const id of [...this.accounts.keys()]) if (!this.prepaid.has(id)) this.accounts.delete(id);
    await this.recompute(ids);
    this.loaded = true;
    this.stats.snapshots++;
  }

  private onNotification(msg: Notification): void {
    if (msg.channel === CREDIT_USAGE_CHANNEL) {
      this.stats.usageNotifications++;
      for (const id of (msg.payload ?? '').split(' ')) if (this.prepaid.has(id)) this.pending.add(id);
    } else if (msg.channel === CREDIT_GRANTS_CHANNEL && msg.payload) {
      this.stats.grantNotifications++;
      this.pending.add(msg.payload);
      // Whether it is prepaid-only is read again with it (the flag may be what changed).
      this.recheck.add(msg.payload);
    }
    if (this.pending.size > 0) this.reloading ??= this.reloadLoop().finally(() => (this.reloading = undefined));
  }

  private async reloadLoop(): Promise<void> {
    while (this.pending.size > 0 && !this.listen.stopped) {
      const ids = [...this.pending];
      const recheck = [...this.recheck];
      this.pending.clear();
      this.recheck.clear();
      try {
        for (const id of recheck) {
          if (await this.source.isPrepaidOnly(id)) this.prepaid.add(id);
          else {
            this.prepaid.delete(id);
            this.accounts.delete(id);
          }
        }
        const changed = await this.recompute(ids);
        for (const listener of this.listeners) {
          try {
            listener(changed);
          } catch (err) {
            this.onError('credit state: a change listener failed', err);
          }
        }
      } catch (err) {
        // Keep them pending: the next notification, or the reconnect's full load, retries.
        for (const id of ids) this.pending.add(id);
        for (const id of recheck) this.recheck.add(id);
        this.onError('credit state: could not recompute credits; retrying with the next notification', err);
        return;
      }
    }
  }
}
