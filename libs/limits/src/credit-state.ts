import { openListenConnection } from './listen-connection';
import { Client, type Notification } from 'pg';
import type { CostUnits } from '@tokenmeter/billing';
import { CREDIT_GRANTS_CHANNEL, CREDIT_USAGE_CHANNEL } from '@tokenmeter/db';
import { coveringUnits, type CreditPoolBalance } from './credits.service';

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
  private client: Client | undefined;
  private stopped = false;
  private loaded = false;
  private seq = 0;
  private reconnecting: Promise<void> | undefined;
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
  }

  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.connect();
    } catch (err) {
      this.onError('credit state: first connection failed; retrying in the background', err);
      this.reconnect();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
    await this.reconnecting?.catch(() => undefined);
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

  private async connect(): Promise<void> {
    const client = await openListenConnection(this.options.databaseUrl, 'tokenmeter-credit-state', [CREDIT_USAGE_CHANNEL, CREDIT_GRANTS_CHANNEL], {
      lost: (c, err) => this.lost(c, err ?? new Error('connection ended')),
      notification: (c, msg) => this.onNotification(c, msg),
    });
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.stats.connects++;
    // Only after LISTEN: whatever commits from now on is notified, whatever committed before is read here.
    try {
      const ids = await this.source.listPrepaidOnlyAccountIds();
      this.prepaid = new Set(ids);
      for (const id of [...this.accounts.keys()]) if (!this.prepaid.has(id)) this.accounts.delete(id);
      await this.recompute(ids);
    } catch (err) {
      if (this.client === client) this.client = undefined;
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw err;
    }
    this.loaded = true;
    this.stats.snapshots++;
  }

  private onNotification(client: Client, msg: Notification): void {
    if (client !== this.client && this.client !== undefined) return;
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
    while (this.pending.size > 0 && !this.stopped) {
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

  private lost(client: Client, err: unknown): void {
    if (client !== this.client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.stopped) return;
    this.onError('credit state: listen connection lost; reconnecting', err);
    this.reconnect();
  }

  private reconnect(): void {
    if (this.reconnecting || this.stopped) return;
    this.reconnecting = (async () => {
      let delay = this.options.reconnectMinMs ?? 100;
      const max = this.options.reconnectMaxMs ?? 5000;
      while (!this.stopped) {
        await new Promise((r) => setTimeout(r, delay).unref());
        if (this.stopped) return;
        try {
          await this.connect();
          return;
        } catch (err) {
          this.onError(`credit state: reconnect failed; next try in ${Math.min(delay * 2, max)} ms`, err);
          delay = Math.min(delay * 2, max);
        }
      }
    })().finally(() => (this.reconnecting = undefined));
  }
}
