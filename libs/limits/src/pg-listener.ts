import type { Client } from 'pg';
import { openListenConnection } from './listen-connection';
import type { Logger } from '@tokenmeter/config';

/**
 * LISTEN on one channel (or several) over a dedicated connection (a pooled one would be handed to others and
 * lose its LISTEN). A dropped connection is reconnected with back-off, and `onNotify` is also
 * called after every (re)connect, once LISTEN is in place, since notifications sent while it was
 * down are gone: the caller then looks at the database itself, so nothing is missed. `onNotify`
 * gets the notification's channel and payload, and no arguments after a (re)connect.
 */
export class PgListener {
  private client: Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  private readonly channels: readonly string[];
  private readonly channel: string;

  constructor(
    private readonly databaseUrl: string,
    channel: string | readonly string[],
    private readonly onNotify: (notification?: { channel: string; payload: string }) => void,
    private readonly log: Logger,
  ) {
    this.channels = typeof channel === 'string' ? [channel] : channel;
    for (const c of this.channels) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new Error(`invalid channel name ${c}`);
    this.channel = this.channels.join(',');
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let client: Client;
    try {
      client = await openListenConnection(this.databaseUrl, `tokenmeter-listen-${this.channels[0]}`, this.channels, {
        lost: (c, err) => this.lost(c, err),
        notification: (_c, n) => {
          if (this.channels.includes(n.channel)) this.onNotify({ channel: n.channel, payload: n.payload ?? '' });
        },
      });
    } catch (err) {
      this.lost(undefined, err as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.failures = 0;
    this.onNotify();
  }

  private lost(client: Client | undefined, err: Error | undefined): void {
    if (this.stopped) return;
    if (this.client !== undefined && this.client !== client) return;
    if (this.client === client) this.client = undefined;
    if (this.retryTimer) return;
    this.failures += 1;
    const delayMs = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
    this.log.warn({ err, channel: this.channel, retryInMs: delayMs }, 'LISTEN connection lost; reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delayMs);
  }
}
