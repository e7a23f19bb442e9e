import { Client, type Notification } from 'pg';

export interface ListenConnectionOptions {
  databaseUrl: string;
  /** The backend's application_name in pg_stat_activity (the tests find it by that name). */
  applicationName: string;
  channels: readonly string[];
  /** Says whose connection it is in messages ("spend state: listen connection lost; ..."). */
  name: string;
  /**
   * Runs after LISTEN, at start and after every reconnect. Whatever commits from then on is
   * notified, so this is where the owner reads what it may have missed while it was away. If it
   * throws, or the connection is lost before it settles, the connection is dropped and the next
   * try follows the back-off.
   */
  onConnected: (client: Client) => Promise<void> | void;
  /** A notification on the current connection (or on the one being opened). */
  onNotification: (msg: Notification) => void;
  /** The current connection is gone (lost, dropped or stopped): timers that use it stop here. */
  onDisconnected?: () => void;
  /** The wait before the first try after a failure (default 100 ms); it doubles after each failed try, up to `reconnectMaxMs` (default 5 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Each failure, with the wait before the next try. */
  onError: (message: string, err: unknown, retryInMs: number) => void;
}

/**
 * A dedicated connection that LISTENs on `channels` (a pooled one would be handed to others and
 * lose its LISTEN), kept open: a lost connection, or one whose `onConnected` failed, is replaced
 * after a back-off. The one lifecycle of PgListener's, SpendStateCache's and CreditState's
 * connections; each owner keeps its own reload policy in `onConnected`.
 */
export class ListenConnection {
  private current: Client | undefined;
  private isStopped = true;
  private readonly minMs: number;
  private readonly maxMs: number;
  private retrying: Promise<void> | undefined;
  /** Ends the back-off wait early (stop). */
  private wake: (() => void) | undefined;

  constructor(private readonly options: ListenConnectionOptions) {
    for (const c of options.channels) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new Error(`invalid channel name ${c}`);
    this.minMs = options.reconnectMinMs ?? 100;
    this.maxMs = options.reconnectMaxMs ?? 5000;
  }

  /** Between stop() and the next start() (work the owner does in the background ends early then). */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** The connection, once LISTEN is in place (also while `onConnected` runs); undefined while it is down. */
  get client(): Client | undefined {
    return this.current;
  }

  /** Connects, listens and runs `onConnected`; if that fails, keeps trying in the background and resolves at once. */
  async start(): Promise<void> {
    this.isStopped = false;
    try {
      await this.connect();
    } catch (err) {
      this.retry('first connection failed', err);
    }
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    this.wake?.();
    const client = this.current;
    this.current = undefined;
    if (client) {
      this.options.onDisconnected?.();
      await client.end().catch(() => undefined);
    }
    await this.retrying?.catch(() => undefined);
  }

  /** Replaces `client` if it is still the current connection (an error, its end, or a heartbeat unanswered). */
  drop(client: Client, err: unknown): void {
    if (client !== this.current) return;
    void this.release(client);
    if (!this.stopped) this.retry('listen connection lost', err);
  }

  /** Closes `client` without reporting its end; if it was the current connection, there is none now. */
  private release(client: Client): Promise<void> {
    if (client === this.current) {
      this.current = undefined;
      this.options.onDisconnected?.();
    }
    client.removeAllListeners('end');
    return client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.options.databaseUrl, application_name: this.options.applicationName });
    // Attached before connecting, so a loss is seen from the first moment.
    client.on('error', (err) => this.drop(client, err));
    client.on('end', () => this.drop(client, new Error('connection ended')));
    client.on('notification', (msg) => {
      if (client === this.current || this.current === undefined) this.options.onNotification(msg);
    });
    try {
      await client.connect();
      for (const c of this.options.channels) await client.query(`LISTEN ${c}`);
    } catch (err) {
      await this.release(client);
      throw err;
    }
    if (this.stopped) {
      await this.release(client);
      return;
    }
    this.current = client;
    try {
      await this.options.onConnected(client);
    } catch (err) {
      await this.release(client);
      throw err;
    }
    // Lost while onConnected ran: drop() started a retry, or (inside one) this try counts as failed.
    if (client !== this.current && !this.stopped) throw new Error('listen connection lost while it was being set up');
  }

  private retry(failure: string, err: unknown): void {
    if (this.retrying || this.stopped) return;
    this.options.onError(`${this.options.name}: ${failure}; next try in ${this.minMs} ms`, err, this.minMs);
    this.retrying = (async () => {
      let delayMs = this.minMs;
      while (!this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          timer.unref();
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
        if (this.stopped) return;
        try {
          await this.connect();
          return;
        } catch (e) {
          delayMs = Math.min(delayMs * 2, this.maxMs);
          this.options.onError(`${this.options.name}: reconnect failed; next try in ${delayMs} ms`, e, delayMs);
        }
      }
    })().finally(() => (this.retrying = undefined));
  }
}
