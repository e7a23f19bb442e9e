import { Client, type Notification } from 'pg';

/**
 * A dedicated connection that LISTENs on `channels` (a pooled one would be handed to others and
 * lose its LISTEN): the one way PgListener, SpendStateCache and CreditState open theirs. The
 * handlers are attached before connecting, so a loss is reported from the first moment; if
 * connecting or LISTEN fails, the connection is closed (without reporting its end) and the error thrown.
 */
export async function openListenConnection(
  databaseUrl: string,
  applicationName: string,
  channels: readonly string[],
  on: { lost: (client: Client, err: Error | undefined) => void; notification: (client: Client, msg: Notification) => void },
): Promise<Client> {
  const client = new Client({ connectionString: databaseUrl, application_name: applicationName });
  client.on('error', (err) => on.lost(client, err));
  client.on('end', () => on.lost(client, undefined));
  client.on('notification', (msg) => on.notification(client, msg));
  try {
    await client.connect();
    for (const c of channels) await client.query(`LISTEN ${c}`);
  } catch (err) {
    client.removeAllListeners('end');
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}
