/**
^ * Helpers for the API tests: API keys inserted as rows (as the admin routes would
 * create them), an app listening on port 0, and a tiny typed fetch wrapper.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiKeyAuthenticator, ApiKeysService, generateApiKey, prefixOfApiKey } from '@tokenmeter/auth';
import type { Database } from '@tokenmeter/db';
import { createApiApp } from '../../apps/api/src/app';
import { useEnv } from './env';
import { openTestDatabase, resetDatabase, seedPriceBook, TEST_DATABASE_URL } from './tokenmeter-db';

export const INGEST_TOKEN = 'test-ingest-token-0123456789';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const base62 = (n: number) => [...randomBytes(n)].map((b) => BASE62[b % 62]).join('');

/** An API key row with a random secret; returns the bearer key (`tm_live_<8>_<32>`). */
export async function insertApiKey(db: Database, role: 'admin' | 'auditor' | 'account', accountId: string | null = null): Promise<string> {
  const prefix = `tm_live_${base62(8)}`;
  const key = `${prefix}_${base62(32)}`;
  await db.pool.query('INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ($1, $2, $3, $4, $5)', [
    `key_${base62(16)}`,
    prefix,
    createHash('sha256').update(key).digest('hex'),
    role,
    accountId,
  ]);
  return key;
}

/**
 * The API in this process; request logs only at `logLevel` and above (tests keep them quiet).
 * `env` sets further configuration. The failed-authentication limit defaults to a very high one
 * here: suites that check 401s across every route fail on purpose far more often than 20 times a
 * minute from 127.0.0.1; test/e2e/auth-hardening.test.ts sets small limits to test the throttle.
 */
export async function startApi(logLevel = 'warn', env: Record<string, string> = {}): Promise<{ app: NestExpressApplication; base: string }> {
  Object.assign(process.env, {
    LOG_LEVEL: logLevel,
    TOKENMETER_INGEST_TOKEN: INGEST_TOKEN,
    DATABASE_URL: TEST_DATABASE_URL,
    AUTH_FAILURE_LIMIT: '1000000',
    AUTH_FAILURE_WINDOW_SECONDS: '60',
    API_TRUST_PROXY: 'false',
    // No lean authorize port unless a test asks for one (AUTHORIZE_PORT's default, 3001, may be taken).
    AUTHORIZE_PORT: '0',
    ...env,
  });
  const app = await createApiApp();
  await app.listen(0, '127.0.0.1');
  return { app, base: await app.getUrl() };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  // Tests assert on shapes; `any` keeps them readable.
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function client(base: string) {
  return {
    async get(path: string, key?: string | null): Promise<JsonResponse> {
      const res = await fetch(`${base}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON (exports): keep the text
      }
      return { status: res.status, headers: res.headers, body };
    },
    /** HTTP ingest, the same path as Kafka. Returns the per-event results. */
    async ingest(events: unknown[]): Promise<JsonResponse['body']> {
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
        body: JSON.stringify({ events }),
      });
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
      return res.json();
    },
  };
}

/** Query string from an object, skipping undefined values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined) as [string, string | number][];
  return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
}

/**
 * JSON calls to the app at `base()` with `defaultKey` (a key of `null` sends none): the status, the
 * headers and the parsed body (null when empty). `base` is a getter because tests learn the port in beforeAll.
 */
export function jsonCaller(base: () => string, defaultKey: string) {
  return async (
    method: string,
    path: string,
    options: { key?: string | null; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<JsonResponse> => {
    const key = options.key === undefined ? defaultKey : options.key;
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
}

/** After the tables were emptied under a running app: its bootstrap admin key again, as a fresh boot would make it. */
export async function restoreBootstrapAdminKey(app: NestExpressApplication, key: string): Promise<void> {
  app.get(ApiKeyAuthenticator).forget(prefixOfApiKey(key)!);
  await app.get(ApiKeysService).ensureBootstrapAdminKey(key);
}

export interface AdminApiSuite {
  /** The secret of the app's bootstrap admin key (TOKENMETER_ADMIN_KEY): `call`'s default key. */
  readonly adminKey: string;
  /** Set in beforeAll. */
  app: NestExpressApplication;
  base: string;
  db: Database;
  call: ReturnType<typeof jsonCaller>;
  /** POST /v1/events with the ingest token (the HTTP ingest path). */
  ingest: (events: unknown[]) => Promise<JsonResponse>;
}

/**
 * The setup the admin API suites share, registered as jest hooks (call it at the top of a
 * describe, so its beforeEach runs before the suite's own): the API started once with a fresh
 * bootstrap admin key and a database handle of the test's own; before each test empty tables, the
 * seed price book (unless `seedPrices` is false) and the bootstrap key again; all closed after.
 */
export function useAdminApi(options: { seedPrices?: boolean } = {}): AdminApiSuite {
  const adminKey = generateApiKey().key;
  const call = jsonCaller(() => suite.base, adminKey);
  const suite: AdminApiSuite = {
    adminKey,
    app: undefined as unknown as NestExpressApplication,
    base: '',
    db: undefined as unknown as Database,
    call,
    ingest: (events) => call('POST', '/v1/events', { key: INGEST_TOKEN, body: { events } }),
  };
  useEnv({ TOKENMETER_ADMIN_KEY: adminKey });
  beforeAll(async () => {
    suite.db = openTestDatabase();
    ({ app: suite.app, base: suite.base } = await startApi());
  });
  afterAll(async () => {
    await suite.app?.close();
    await suite.db?.close();
  });
  beforeEach(async () => {
    await resetDatabase(suite.db);
    if (options.seedPrices !== false) await seedPriceBook(suite.db);
    // The tables were emptied under the running app: recreate its bootstrap key as a fresh boot would.
    await restoreBootstrapAdminKey(suite.app, adminKey);
  });
  return suite;
}

/**
 * Statements the API process runs on its pool in the background, whatever page or route is being
 * served: the authorize check's refreshes of the price book's revision and of the accounts' fail
 * modes, and the freshness cache (ingest_progress). Tests that count a request's statements leave
 * these out.
 */
export const BACKGROUND_STATEMENTS = /AS revision|spend_fail_mode <> 'open'|ingest_progress/;
