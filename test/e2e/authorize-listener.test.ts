import http from 'node:http';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Database } from '@tokenmeter/db';
import { SpendStateCache } from '@tokenmeter/limits';
import { AuthorizeListener } from '../../apps/api/src/limits/authorize-listener';
import { INGEST_TOKEN, insertApiKey, startApi } from '../helpers/api-app';
import { freePort } from '../helpers/processes';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

// What a request for 1200 prompt tokens and max_output_tokens 500 of deepseek-r1 holds at the seed rates.
const HOLD = '0.00182853';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  // Tests assert on shapes.
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  reusedSocket: boolean;
}

/** The lean port (AUTHORIZE_PORT) against the Nest route, in the real app: the same answers to the same requests. */
describe('POST /v1/spend/authorize on the lean port (AUTHORIZE_PORT)', () => {
  let db: Database;
  let app: NestExpressApplication | undefined;
  let nestPort: number;
  let fastPort: number;
  let adminKey: string;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  type CallOptions = { token?: string | null; method?: string; path?: string; contentType?: string };
  function call(port: number, body: string | undefined, opts: CallOptions = {}): Promise<Answer> {
    const token = opts.token === undefined ? INGEST_TOKEN : opts.token;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port,
          method: opts.method ?? 'POST',
          path: opts.path ?? '/v1/spend/authorize',
          headers: {
            ...(body !== undefined ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : null, reusedSocket: req.reusedSocket }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  const ask = (account: string, requestId: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ account_id: account, model: 'deepseek-r1', request_id: requestId, estimated_input_tokens: 1200, max_output_tokens: 500, ...extra });

  /**
   * The same request to the Nest route and to the lean port. Only for requests that change nothing
   * (denials, a request_id already held): as_of moves with the heartbeat, so a pair that straddles
   * one is asked again.
   */
  async function both(body: string, opts: { token?: string | null } = {}): Promise<{ nest: Answer; fast: Answer }> {
    for (let attempt = 1; ; attempt++) {
      const nest = await call(nestPort, body, opts);
      const fast = await call(fastPort, body, opts);
      if (nest.body?.as_of === fast.body?.as_of || attempt === 5) return { nest, fast };
    }
  }
  async function createBudget(body: Record<string, unknown>): Promise<{ id: string }> {
    await db.pool.query(`INSERT INTO accounts (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING`, [body.account_id]);
    const res = await fetch(`http://127.0.0.1:${nestPort}/admin/budgets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`POST /admin/budgets answered ${res.status}: ${await res.text()}`);
    const budget = (await res.json()) as { id: string };
    // The API's cache learns of it through NOTIFY: wait until it does.
    const cache = app!.get(SpendStateCache);
    const deadline = Date.now() + 10_000;
    while (!cache.budgetsOf(String(body.account_id)).some((b) => b.id === budget.id)) {
      if (Date.now() > deadline) throw new Error('the budget never reached the spend state');
      await new Promise((r) => setTimeout(r, 25));
    }
    return budget;
  }

  beforeAll(async () => {
    db = openTestDatabase();
    await resetDatabase(db);
    await seedPriceBook(db);
    adminKey = await insertApiKey(db, 'admin');
    const started = await startApi('warn', { AUTHORIZE_PORT: String(await freePort()) });
    app = started.app;
    nestPort = Number(new URL(started.base).port);
    fastPort = app.get(AuthorizeListener).port!;
  });
  afterAll(async () => {
    agent.destroy();
    await app?.close();
    await db.close();
  });

  it('listens on AUTHORIZE_PORT, not on the API port', async () => {
    expect(fastPort).toBe(Number(process.env.AUTHORIZE_PORT));
    expect(fastPort).not.toBe(nestPort);
  });

  it('allows like the route: a new request holds its estimate; asked again, both give the same answer', async () => {
    await createBudget({ account_id: 'acct_roomy', limit_usd: '100', window: 'month', enforce: 'hard' });
    const first = await call(fastPort, ask('acct_roomy', 'r1'));
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.body).toEqual({ decision: 'allow', remaining_usd: '99.99817147', hold_usd: HOLD, as_of: expect.any(String), on_unreachable: 'allow' });
    // The hold is the shared authorizer's: the Nest route sees it (the same request_id, the same hold).
    const { nest, fast } = await both(ask('acct_roomy', 'r1'));
    expect(nest.status).toBe(200);
    expect(fast.status).toBe(200);
    expect(fast.body).toEqual(nest.body);
    expect(fast.body).toMatchObject({ hold_usd: HOLD, remaining_usd: '99.99817147' });
    // Unknown accounts, too.
    const unknown = await both(ask('acct_nobody', 'r1'));
    expect(unknown.fast).toMatchObject({ status: 200, body: unknown.nest.body });
  });

  it('denies like the route: 402 with the budget, 429 with Retry-After', async () => {
    await createBudget({ account_id: 'acct_tiny', limit_usd: '0.001', window: 'day', enforce: 'hard' });
    const spent = await both(ask('acct_tiny', 'r1'));
    expect(spent.nest.status).toBe(402);
    expect(spent.fast.status).toBe(402);
    expect(spent.fast.body).toEqual(spent.nest.body);
    expect(spent.fast.body).toMatchObject({ decision: 'deny', reason: 'budget_exceeded', hold_usd: '0', limit_source: { scope: 'account', window: 'day', limit_usd: '0.001' } });

    // Room for one hold: the first request (on the lean port) takes it, the next one waits for it.
    await createBudget({ account_id: 'acct_one', limit_usd: '0.003', window: 'month', enforce: 'hard' });
    expect((await call(fastPort, ask('acct_one', 'held'))).status).toBe(200);
    const busy = await both(ask('acct_one', 'next'));
    expect(busy.nest.status).toBe(429);
    expect(busy.fast.status).toBe(429);
    expect(busy.fast.body).toEqual(busy.nest.body);
    expect(busy.fast.body).toMatchObject({ decision: 'deny', reason: 'holds_in_flight' });
    expect(busy.fast.headers['retry-after']).toBe(busy.nest.headers['retry-after']);
    expect(Number(busy.fast.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('refuses bad input and a bad token with the same errors as the route', async () => {
    const cases: Array<[string, string]> = [
      ['a float token count', ask('acct_x', 'r', { max_output_tokens: 1.5 })],
      ['an unknown field', ask('acct_x', 'r', { extra: 1 })],
      ['a missing account', JSON.stringify({ model: 'm', request_id: 'r' })],
      ['a bad identifier', ask('has space', 'r')],
      ['an array', '[1]'],
      ['an empty body', ''],
    ];
    for (const [what, body] of cases) {
      const { nest, fast } = await both(body);
      expect({ what, status: fast.status }).toEqual({ what, status: 400 });
      expect({ what, body: fast.body }).toEqual({ what, body: nest.body });
      expect(fast.body.error.code).toBe('validation_failed');
    }
    const field = await call(fastPort, ask('acct_x', 'r', { max_output_tokens: 1.5 }));
    expect(field.body.error.details).toMatchObject({ field: 'max_output_tokens' });

    // Not JSON: both 400 invalid_json (the parser's own message may differ in its wording).
    const broken = await both('{"account_id": ');
    expect(broken.fast.status).toBe(400);
    expect(broken.nest.status).toBe(400);
    expect(broken.fast.body.error.code).toBe(broken.nest.body.error.code);
    expect(broken.fast.body.error.code).toBe('invalid_json');
    // Not application/json: no body, as on the route.
    const text = { nest: await call(nestPort, ask('acct_x', 'r'), { contentType: 'text/plain' }), fast: await call(fastPort, ask('acct_x', 'r'), { contentType: 'text/plain' }) };
    expect(text.fast.status).toBe(400);
    expect(text.fast.body).toEqual(text.nest.body);

    for (const token of [null, 'wrong-token-0123456789', adminKey]) {
      const { nest, fast } = await both(ask('acct_x', 'r'), { token });
      expect(fast.status).toBe(401);
      expect(nest.status).toBe(401);
      expect(fast.body).toEqual(nest.body);
    }
  });

  it('answers 404 for other paths, 405 for other methods, 413 for a body over 64 KiB', async () => {
    const other = await call(fastPort, ask('acct_x', 'r'), { path: '/v1/events' });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('not_found');
    const get = await call(fastPort, undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.body.error.code).toBe('method_not_allowed');
    // Express's routing rules: case-insensitive, trailing slash allowed, query ignored.
    expect((await call(fastPort, ask('acct_nobody', 'r2'), { path: '/V1/Spend/Authorize/?x=1' })).status).toBe(200);
    const big = await call(fastPort, ask('acct_x', 'r', { pad: 'x'.repeat(70 * 1024) }));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload_too_large');
  });

  it('keeps the connection alive across requests, refusals included', async () => {
    const fresh = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    fresh.on('free', (socket) => sockets.add(socket));
    const once = (token: string | null, requestId: string) =>
      new Promise<{ status: number; connection: string | undefined; reused: boolean }>((resolve, reject) => {
        const body = ask('acct_nobody', requestId);
        const req = http.request(
          {
            agent: fresh,
            host: '127.0.0.1',
            port: fastPort,
            method: 'POST',
            path: '/v1/spend/authorize',
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(token ? { authorization: `Bearer ${token}` } : {}) },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, reused: req.reusedSocket }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      const answers = [await once(INGEST_TOKEN, 'k1'), await once(null, 'k2'), await once(INGEST_TOKEN, 'k3'), await once(INGEST_TOKEN, 'k4')];
      expect(answers.map((a) => a.status)).toEqual([200, 401, 200, 200]);
      expect(answers.map((a) => a.connection)).toEqual(['keep-alive', 'keep-alive', 'keep-alive', 'keep-alive']);
      expect(answers.map((a) => a.reused)).toEqual([false, true, true, true]);
      expect(sockets.size).toBe(1);
    } finally {
      fresh.destroy();
    }
  });

  it('stops with the app', async () => {
    await app!.close();
    app = undefined;
    await expect(call(fastPort, ask('acct_nobody', 'r3'))).rejects.toThrow(/ECONNREFUSED|socket hang up|ECONNRESET/);
  });
});
