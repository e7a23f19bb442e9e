/**
 * The streaming replica of the test database's Postgres, for the tests of DATABASE_READ_URL.
 *
 * startReadReplica() runs `scripts/services.sh up postgres --replica` (idempotent: a second of
 * checks when the replica runs already; seconds to make it from a small primary, longer from a big
 * one, since a physical replica copies every database of the server) and answers the test
 * database's URL on the replica: the test database (and its migrations) is there under the same
 * name, role and password. `stop` leaves the machine as it was: it removes the replica only if
 * this call made it, so it does not go on replaying every write of the server after the test.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { databaseUrlFor, TEST_DATABASE_URL } from './db';
import { waitFor } from './kafka';

const REPLICA_PORT = process.env.TOKENMETER_PG_REPLICA_PORT ?? '5434';
const ROOT = path.resolve(__dirname, '../..');

export async function startReadReplica(): Promise<{ url: string; stop(): Promise<void> }> {
  const primaryPort = new URL(TEST_DATABASE_URL).port || '5432';
  const env = { ...process.env, TOKENMETER_PG_PORT: primaryPort, TOKENMETER_PG_REPLICA_PORT: REPLICA_PORT };
  const services = (...args: string[]) =>
    promisify(execFile)('bash', [path.join(ROOT, 'scripts/services.sh'), ...args], { cwd: ROOT, env, timeout: 300_000 });
  const runningBefore = await services('status', 'postgres-replica').then(
    () => true,
    () => false,
  );
  await services('up', 'postgres', '--replica');
  const url = new URL(TEST_DATABASE_URL);
  url.port = REPLICA_PORT;
  return {
    url: url.toString(),
    stop: async () => {
      if (!runningBefore) await services('down', 'postgres-replica');
    },
  };
}

/**
 * Waits until the replica has replayed everything the primary had written when asked: after it,
 * a read on the replica sees every write committed on the primary before the call.
 */
export async function waitForReplay(primary: Pick<Client, 'query'>, replica: Pick<Client, 'query'>): Promise<void> {
  const { rows } = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  await waitFor('the replica to replay the primary', async () => {
    const r = await replica.query<{ done: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [rows[0].lsn]);
    return r.rows[0].done;
  }, 30_000, 50);
}

/** Stops applying WAL on the replica (it still receives it): from now on the replica lags the primary. */
export async function pauseReplay(replica: Pick<Client, 'query'>): Promise<void> {
  await replica.query('SELECT pg_wal_replay_pause()');
  // The request takes effect at the next WAL record; 'paused' says no further record is applied.
  await waitFor('replay to pause', async () => {
    const { rows } = await replica.query<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state');
    return rows[0].state === 'paused';
  }, 10_000, 50);
}

export async function resumeReplay(replica: Pick<Client, 'query'>): Promise<void> {
  await replica.query('SELECT pg_wal_replay_resume()');
}

/**
 * Holds a session advisory lock, in the server's `postgres` database (advisory locks are per
 * database, and every checkout has its own test database), until `release`: the replica is one per
 * machine, and a test pausing its replay must not run while another checkout's test relies on it.
 */
export async function lockReplicaForTest(): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: databaseUrlFor('postgres'), application_name: 'tokenmeter-replica-test-lock' });
  await client.connect();
  await client.query("SELECT pg_advisory_lock(hashtext('tokenmeter.read-replica-tests'))");
  return { release: () => client.end() };
}
