import type { NestExpressApplication } from '@nestjs/platform-express';
import { costUnitsToString, parseCostUnits } from '@tokenmeter/billing';
import type { Database } from '@tokenmeter/db';
import { SpendAuthorizer, SpendStateCache } from '@tokenmeter/limits';
import { aUsageEvent } from '../factories/usage-events';
import { client, INGEST_TOKEN, insertApiKey, startApi } from '../helpers/api-app';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';
import { until } from '../helpers/kafka';

// A default event (1000 input, 500 output, 200 cache read) at deepseek-r1's seed rates, and what a
// request for it holds when the gateway counts the whole prompt (1200) and sends max_output_tokens 500.
const EVENT_COST = parseCostUnits('0.00175997');
const HOLD = parseCostUnits('0.00182853');

describe('POST /v1/spend/authorize (the API app, real Postgres, real ingest)', () => {
  let db: Database;
  let app: NestExpressApplication;
  let base: string;
  let adminKey: string;

  const authorize = async (body: unknown, token: string | null = INGEST_TOKEN) => {
    const res = await fetch(`${base}/v1/spend/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
  };
  const ask = (account: string, requestId: string, extra: Record<string, unknown> = {}) =>
    authorize({ account_id: account, model: 'deepseek-r1', request_id: requestId, estimated_input_tokens: 1200, max_output_tokens: 500, ...extra });
  const createBudget = async (body: Record<string, unknown>) => {
    const res = await fetch(`${base}/admin/budgets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`POST /admin/budgets answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  const nowEvent = (account: string, requestId: string) => aUsageEvent({ account_id: account, request_id: requestId, occurred_at: new Date().toISOString() });
  const windowSpend = async (budgetId: string) =>
    (await db.pool.query<{ s: string }>(`SELECT coalesce(sum(spend_usd), 0)::text AS s FROM budget_windows WHERE budget_id = $1`, [budgetId])).rows[0].s;

  beforeAll(async () => {
    db = openTestDatabase();
    // The spend state is loaded when the app starts: the database is reset first, never under it.
    await resetDatabase(db);
    await seedPriceBook(db);
    adminKey = await insertApiKey(db, 'admin');
    ({ app, base } = await startApi());
  });
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  it('is for the gateway only (the ingest token, not API keys) and checks its body strictly', async () => {
    expect((await authorize({ account_id: 'a', model: 'm', request_id: 'r' }, null)).status).toBe(401);
    expect((await authorize({ account_id: 'a', model: 'm', request_id: 'r' }, adminKey)).status).toBe(401);
    const bad = await authorize({ account_id: 'a', model: 'm', request_id: 'r', max_output_tokens: 1.5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toMatchObject({ field: 'max_output_tokens' });
    expect((await authorize({ account_id: 'a', model: 'm', request_id: 'r', extra: 1 })).status).toBe(400);
    expect((await authorize({ model: 'm', request_id: 'r' })).status).toBe(400);
  });

  it('allows unknown accounts and accounts without budgets', async () => {
    const r = await ask('acct_nobody', 'r1');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ decision: 'allow', remaining_usd: null, hold_usd: '0', as_of: expect.any(String), on_unreachable: 'allow' });
    expect(Date.now() - Date.parse(r.body.as_of)).toBeLessThan(3000);
  });

  it('concurrent requests racing to a hard limit never hold more than the room; their events settle the holds and the spend is exact', async () => {
    const account = 'acct_race';
    await client(base).ingest([nowEvent(account, 'before_1'), nowEvent(account, 'before_2')]);
    // Room for exactly 37 holds after the 2 events so far, plus a little less than one more.
    const limit = 2n * EVENT_COST + 37n * HOLD + HOLD - 1n;
    const budget = await createBudget({ account_id: account, limit_usd: costUnitsToString(limit), window: 'month', enforce: 'hard' });
    const authorizer = app.get(SpendAuthorizer);
    const cache = app.get(SpendStateCache);
    await until('the budget is in memory', () => cache.getBudget(budget.id) !== undefined);

    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => ask(account, `race_${i}`)));
    const allowed = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(allowed).toHaveLength(37);
    const held = allowed.reduce((sum, a) => sum + parseCostUnits(a.body.hold_usd), 0n);
    expect(held).toBeLessThanOrEqual(limit - 2n * EVENT_COST);
    // Every refusal is the transient one: only holds fill the room.
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.body).toMatchObject({ decision: 'deny', reason: 'holds_in_flight', hold_usd: '0', limit_source: { budget_id: budget.id, scope: 'account' } });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(5);
    }
    // Asking again with a request_id already held: the same hold, not a second.
    const again = await ask(account, 'race_0');
    expect(again.status).toBe(answers[0].status);
    expect(authorizer.holds.size).toBe(37);

    // The allowed requests' events arrive (each costs a little less than its hold).
    const allowedIds = answers.map((a, i) => (a.status === 200 ? `race_${i}` : null)).filter((id): id is string => id !== null);
    await client(base).ingest(allowedIds.map((id) => nowEvent(account, id)));
    await until('every hold settles', () => authorizer.holds.size === 0);
    const stored = await windowSpend(budget.id);
    expect(stored).toBe(costUnitsToString(39n * EVENT_COST));
    expect(costUnitsToString(cache.spendOf(budget.id, Date.parse(budget.window_start)))).toBe(stored);
    expect(parseCostUnits(stored)).toBeLessThanOrEqual(limit);

    // Each event cost a little less than its hold, so room came back: exactly limit - spend.
    const next = await ask(account, 'next_0');
    expect(next.status).toBe(200);
    expect(next.body.remaining_usd).toBe(costUnitsToString(limit - 39n * EVENT_COST - HOLD));
    // Spend it one request at a time until the committed spend alone leaves no room.
    let spent = 39n;
    let after = next;
    for (let i = 0; after.status === 200 && i < 10; i++) {
      await client(base).ingest([nowEvent(account, `next_${i}`)]);
      spent++;
      await until('the hold settles', () => authorizer.holds.size === 0);
      after = await ask(account, `next_${i + 1}`);
    }
    // Refused exactly when what is left is less than one hold: never earlier, never later.
    expect(limit - spent * EVENT_COST).toBeLessThan(HOLD);
    expect(limit - (spent - 1n) * EVENT_COST).toBeGreaterThanOrEqual(HOLD);
    const final = await windowSpend(budget.id);
    expect(final).toBe(costUnitsToString(spent * EVENT_COST));
    expect(parseCostUnits(final)).toBeLessThanOrEqual(limit);
    expect(after.status).toBe(402);
    expect(after.body).toMatchObject({
      decision: 'deny',
      reason: 'budget_exceeded',
      hold_usd: '0',
      remaining_usd: costUnitsToString(limit - spent * EVENT_COST),
      on_unreachable: 'allow',
      limit_source: { budget_id: budget.id, scope: 'account', window: 'month', window_start: budget.window_start, resets_at: budget.resets_at, limit_usd: costUnitsToString(limit), spend_usd: final },
    });
    expect(after.retryAfter).toBeNull();
    // A smaller request still fits exactly where it fits.
    const small = await ask(account, 'after_small', { estimated_input_tokens: 10, max_output_tokens: 10 });
    expect(small.status).toBe(200);
  });

  it('a soft budget over its limit still allows, and says so; a key budget applies to its key only', async () => {
    const account = 'acct_soft';
    await client(base).ingest([nowEvent(account, 's1')]);
    const key = 'key_soft';
    await db.pool.query(`INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ($1, 'tm_live_soft0000', 'unused', 'account', $2)`, [key, account]);
    const soft = await createBudget({ account_id: account, limit_usd: '0.001', window: 'day', enforce: 'soft' });
    const hard = await createBudget({ account_id: account, api_key_id: key, limit_usd: '0.001', window: 'total', enforce: 'hard' });
    const cache = app.get(SpendStateCache);
    await until('both budgets are in memory', () => cache.getBudget(soft.id) !== undefined && cache.getBudget(hard.id) !== undefined);
    const other = await ask(account, 'o1', { api_key_id: 'key_other' });
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ decision: 'allow', reason: 'soft_limit_exceeded', remaining_usd: null, limit_source: { budget_id: soft.id, scope: 'account' } });
    const mine = await ask(account, 'k1', { api_key_id: key });
    expect(mine.status).toBe(402);
    expect(mine.body.limit_source).toMatchObject({ budget_id: hard.id, scope: 'api_key', window: 'total', resets_at: null });
  });

  it('a restart rebuilds the state from the database and answers the same', async () => {
    const before = await ask('acct_race', 'restart_1');
    await app.close();
    ({ app, base } = await startApi());
    const after = await ask('acct_race', 'restart_1');
    expect(before.status).toBe(402);
    expect(after.status).toBe(402);
    // Holds live in memory only (the one left by 'after_small' is gone): budgets and spend come back as they were.
    expect(after.body.limit_source).toEqual(before.body.limit_source);
    expect(parseCostUnits(after.body.remaining_usd)).toBeGreaterThanOrEqual(parseCostUnits(before.body.remaining_usd));
  });

  it('is in the OpenAPI document with its three answers', async () => {
    const doc = (await client(base).get('/openapi.json')).body;
    const op = doc.paths['/v1/spend/authorize'].post;
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '402', '429', '400', '401']));
    expect(op.responses['402'].content['application/json'].schema.properties.limit_source).toBeDefined();
  });
});
