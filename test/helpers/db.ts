/**
 * Database helpers for integration and e2e tests.
 *
 * Tests run against the Postgres given by DATABASE_URL (normally the `tokenmeter_test` database).
 * A test that needs an empty or disposable database creates a scratch database next to it:
 *
 *   const scratch = await createScratchDatabase('tokenmeter_drift');
 *   try { ... scratch.url ... } finally { await scratch.drop(); }
 *
 * Scratch databases are created empty from template0 and dropped WITH (FORCE), so a leaked
 * connection cannot make drop() fail. The role needs CREATEDB (the dev role is superuser).
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DEFAULT_DATABASE_URL } from '@tokenmeter/config';

/**
 * The database every test uses: scripts/test.sh sets DATABASE_URL from TEST_DATABASE_URL; run
 * without it, `tokenmeter_test` next to the development database (never the development one).
 */
export const TEST_DATABASE_URL: string = process.env.DATABASE_URL ?? databaseUrlFor('tokenmeter_test', DEFAULT_DATABASE_URL);

export interface ScratchDatabase {
  /** Database name, `<prefix>_<random hex>`. */
  name: string;
  /** TEST_DATABASE_URL with the database replaced by this one. */
  url: string;
  /** Drops the database (idempotent). */
  drop(): Promise<void>;
}

/** The same server, user and options as `baseUrl`, another database. */
export function databaseUrlFor(database: string, baseUrl: string = TEST_DATABASE_URL): string {
  const u = new URL(baseUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs `fn` with a connected pg client and always closes it. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database on the DATABASE_URL server; drop it in afterAll/finally. */
export async function createScratchDatabase(prefix = 'tokenmeter_scratch'): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`invalid scratch database prefix: ${prefix}`);
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(TEST_DATABASE_URL, (c) => c.query(`CREATE DATABASE "${name}" TEMPLATE template0`));
  return {
    name,
    url: databaseUrlFor(name),
    drop: () => withClient(TEST_DATABASE_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
