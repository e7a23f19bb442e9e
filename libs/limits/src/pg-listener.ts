import type { Logger } from '@tokenmeter/config';
import { ListenConnection } from './listen-connection';

/**
 * LISTEN on one channel (or several) for a caller that only needs to be woken: `onNotify` gets the
 * notification's channel and payload, and no arguments after every (re)connect, once LISTEN is in
 * place, since notifications sent while it was down are gone: the caller then looks at the
 * database itself, so nothing is missed. A lost connection is replaced after 0.5 s, doubling up to 30 s.
 */
export class PgListener {
  private readonly connection: ListenConnection;

  constructor(
    databaseUrl: string,
    channel: string | readonly string[],
    onNotify: (notification?: { channel: string; payload: string }) => void,
    log: Logger,
  ) {
    const channels = typeof channel === 'string' ? [channel] : channel;
    this.connection = new ListenConnection({
      databaseUrl,
      applicationName: `tokenmeter-listen-${channels[0]}`,
      channels,
      name: `LISTEN ${channels.join(',')}`,
      onConnected: () => onNotify(),
      onNotification: (n) => onNotify({ channel: n.channel, payload: n.payload ?? '' }),
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      onError: (message, err, retryInMs) => log.warn({ err, channel: channels.join(','), retryInMs }, message),
    });
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }
}
