import { randomUUID } from 'node:crypto';
import { costUnitsToString, parseCostUnits } from '@tokenmeter/billing';
import { PriceBookRepository, SpendStateRepository } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';
import { BudgetsService, SpendAuthorizer, SpendStateCache, type SpendAuthorizerOptions } from '@tokenmeter/limits';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { budgetsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';
import { asMessages, ingestorOn } from '../helpers/ingest';
import { until } from '../helpers/kafka';

const TOPIC = 'gateway.usage.v1.authorize-test';
// A default event (1000 input, 500 output, 200 cache read) at deepseek-r1's seed rates.
const EVENT_COST = parseCostUnits('0.00175997');
// What authorize holds for it when the gateway counts the whole prompt (1200) and sends max_output_tokens 500:
// 1200 x 0.5714/1e6 + 500 x 2.2857/1e6 (cache reads are held at the input rate: never less than they cost).
const HOLD = parseCostUnits('0.00182853');
const request = (requestId: string, over: Record<string, unknown> = {}) => ({
  accountId: 'acct_b',
  apiKeyId: 'key_test',
  model: 'deepseek-r1',
  requestId,
  estimatedInputTokens: 1200,
  maxOutputTokens: 500,
  ...over,
});

describe('the spend state in memory follows what ingest commits (real Postgres, real write path)', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let budgets: BudgetsService;
  let repository: SpendStateRepository;
  const running: { cache: SpendStateCache; authorizer: SpendAuthorizer }[] = [];

  const nowEvent = (over: Partial<GatewayEvent> = {}) => aUsageEvent({ occurred_at: new Date().toISOString(), account_id: 'acct_b', ...over });
  const ingest = async (events: unknown[], kafka?: { partition: number; offset: number }) => {
    const prepared = ingestor.prepare(asMessages(events), kafka ? 'kafka' : 'http', await ingestor.pricingContext());
    // As the consumer records a chunk: its partition's progress in the same transaction.
    const progress = kafka
      ? [{ topic: TOPIC, partition: kafka.partition, nextOffset: String(kafka.offset + events.length), maxOccurredAt: prepared.maxOccurredAt }]
      : [];
    return ingestor.record(prepared, progress);
  };
  const windowSpend = async (budgetId: string) =>
    (await db.pool.query<{ s: string }>(`SELECT coalesce(sum(spend_usd), 0)::text AS s FROM budget_windows WHERE budget_id = $1 AND window_start = date_trunc('month', now(), 'UTC')`, [budgetId]))
      .rows[0].s;

  async function startState(options: Partial<SpendAuthorizerOptions> = {}, cacheOptions: { failModeRefreshMs?: number } = {}) {
    const cache = new SpendStateCache(repository, { databaseUrl: TEST_DATABASE_URL, heartbeatMs: 50, reconnectMinMs: 20, ...cacheOptions });
    const prices = new PriceBookCache(new PriceBookRepository(db.pool));
    const authorizer = new SpendAuthorizer(cache, repository, () => prices.current(), {
      holdTtlMs: 600_000,
      holdGraceMs: 60_000,
      fallbackMaxOutputTokens: 32_768,
      clockSkewMs: 300_000,
      maxRetryAfterSeconds: 5,
      topic: TOPIC,
      topicPartitions: 2,
      sweepMs: 50,
      ...options,
    });
    await authorizer.start();
    await cache.start();
    running.push({ cache, authorizer });
    return { cache, authorizer };
  }

  beforeAll(() => {
    repository = new SpendStateRepository(db.pool);
  });

  beforeEach(async () => {
    ingestor = ingestorOn(db);
    budgets = budgetsServiceOn(db);
    await ingest([nowEvent({ account_id: 'acct_b' }), nowEvent({ account_id: 'acct_other' })]);
    await db.pool.query(`INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ('key_test', 'tm_live_authz000', 'unused', 'account', 'acct_b')`);
  });

  afterEach(async () => {
    for (const r of running.splice(0)) {
      await r.authorizer.stop();
      await r.cache.stop();
    }
  });

  it('loads the snapshot, then applies every committed change from notifications, never an older version', async () => {
    const created = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    const { cache } = await startState();
    const start = created.windowStart.getTime();
    expect(cache.getBudget(created.budget.id)).toMatchObject({ accountId: 'acct_b', limitUnits: parseCostUnits('1'), enforce: 'hard' });
    expect(cache.spendOf(created.budget.id, start)).toBe(EVENT_COST);

    await ingest([nowEvent(), nowEvent(), nowEvent({ account_id: 'acct_other' })]);
    await until('three events are applied', () => cache.spendOf(created.budget.id, start) === 3n * EVENT_COST);
    expect(costUnitsToString(cache.spendOf(created.budget.id, start))).toBe(await windowSpend(created.budget.id));

    // A notification that arrives late (an older version) never takes the spend back.
    const version = cache.windowVersion(created.budget.id, start)!;
    cache.applyWindows([{ budgetId: created.budget.id, windowStartMs: start, spendUsd: '0', version: String(version - 1n) }]);
    expect(cache.spendOf(created.budget.id, start)).toBe(3n * EVENT_COST);

    // A budget created, changed and deleted while running.
    const later = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: 'key_test', model: null, limitUsd: '0.5', window: 'day', enforce: 'soft' }, actor);
    await until('the new budget is known', () => cache.getBudget(later.budget.id) !== undefined);
    expect(cache.budgetsOf('acct_b').map((b) => b.id).sort()).toEqual([created.budget.id, later.budget.id].sort());
    await budgets.updateBudget(later.budget.id, { limitUsd: '0.75', enforce: 'hard' }, actor);
    await until('the change is known', () => cache.getBudget(later.budget.id)?.limitUnits === parseCostUnits('0.75'));
    expect(cache.getBudget(later.budget.id)?.enforce).toBe('hard');
    await budgets.deleteBudget(later.budget.id, actor);
    await until('the deletion is known', () => cache.getBudget(later.budget.id) === undefined);
    expect(cache.budgetsOf('acct_b').map((b) => b.id)).toEqual([created.budget.id]);
  });

  it('as_of advances with the heartbeat; after the listen connection is killed it reconnects and reloads what it missed', async () => {
    const created = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    const { cache } = await startState();
    const start = created.windowStart.getTime();
    const first = cache.asOf!.getTime();
    await until('a heartbeat moves as_of', () => cache.asOf!.getTime() > first);
    expect(Date.now() - cache.asOf!.getTime()).toBeLessThan(1000);

    // A real fault: the server ends the listen connection. Events committed meanwhile are not lost.
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = 'tokenmeter-spend-state' AND datname = current_database()`,
    );
    expect(rows[0].n).toBe(1);
    await ingest([nowEvent(), nowEvent()]);
    await until('reconnected', () => cache.stats.connects === 2 && cache.stats.snapshots === 2);
    await until('what it missed is applied', () => cache.spendOf(created.budget.id, start) === 3n * EVENT_COST);
    await ingest([nowEvent()]);
    await until('notifications flow again', () => cache.spendOf(created.budget.id, start) === 4n * EVENT_COST);
    expect(costUnitsToString(cache.spendOf(created.budget.id, start))).toBe(await windowSpend(created.budget.id));
  });

  it("knows each account's fail mode", async () => {
    await db.pool.query(`UPDATE accounts SET spend_fail_mode = 'closed' WHERE id = 'acct_other'`);
    const { cache, authorizer } = await startState({}, { failModeRefreshMs: 100 });
    expect(cache.failModeOf('acct_other')).toBe('closed');
    expect(authorizer.authorize(request('r1', { accountId: 'acct_other' })).onUnreachable).toBe('deny');
    expect(authorizer.authorize(request('r1')).onUnreachable).toBe('allow');
    await db.pool.query(`UPDATE accounts SET spend_fail_mode = 'closed' WHERE id = 'acct_b'`);
    await until('the change is read', () => cache.failModeOf('acct_b') === 'closed');
  });

  it('holds a request until its event is stored, released together with a spend that includes it', async () => {
    // Room for exactly 2 events plus a hold's worth: limit = spend so far (1 event) + 2 holds.
    const limit = EVENT_COST + 2n * HOLD;
    const created = await budgets.createBudget(
      { accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: costUnitsToString(limit), window: 'month', enforce: 'hard' },
      actor,
    );
    const { cache, authorizer } = await startState();
    const id = created.budget.id;
    const start = created.windowStart.getTime();

    const a = authorizer.authorize(request('req_a'));
    expect(a).toMatchObject({ decision: 'allow', status: 200, holdUnits: HOLD, remainingUnits: HOLD });
    // The same request again: the same hold, not a second one.
    expect(authorizer.authorize(request('req_a'))).toMatchObject({ decision: 'allow', holdUnits: HOLD, remainingUnits: HOLD });
    expect(authorizer.holds.size).toBe(1);
    expect(authorizer.authorize(request('req_b'))).toMatchObject({ decision: 'allow', remainingUnits: 0n });
    // No room left but what the holds take: transient.
    const c = authorizer.authorize(request('req_c'));
    expect(c).toMatchObject({ decision: 'deny', status: 429, reason: 'holds_in_flight', holdUnits: 0n });
    expect(c.retryAfterSeconds).toBeGreaterThanOrEqual(1);

    // req_a's event arrives: the hold is released when (and only when) its spend is in.
    await ingest([nowEvent({ request_id: 'req_a', api_key_id: 'key_test' })]);
    await until('req_a settles', () => authorizer.holds.get('acct_b', 'req_a') === undefined);
    expect(cache.spendOf(id, start)).toBe(2n * EVENT_COST);
    expect(authorizer.stats.releasedByEvent).toBe(1);
    expect(authorizer.holds.unitsOn(id)).toBe(HOLD);

    // The event cost a little less than its hold: that much room came back, not enough for req_c yet.
    expect(authorizer.authorize(request('req_c'))).toMatchObject({ decision: 'deny', status: 429, remainingUnits: HOLD - EVENT_COST });
    await ingest([nowEvent({ request_id: 'req_b' })]);
    await until('all settle', () => authorizer.holds.size === 0);
    expect(costUnitsToString(cache.spendOf(id, start))).toBe(await windowSpend(id));
    expect(cache.spendOf(id, start)).toBe(3n * EVENT_COST);

    // Committed spend alone leaves no room for another request: 402, naming the budget and when it resets.
    const d = authorizer.authorize(request('req_d'));
    expect(d).toMatchObject({ decision: 'deny', status: 402, reason: 'budget_exceeded', remainingUnits: limit - 3n * EVENT_COST });
    expect(d.limitSource).toMatchObject({ budgetId: id, scope: 'account', window: 'month', windowStart: created.windowStart, resetsAt: created.resetsAt });
    expect(d.limitSource).toMatchObject({ spendUnits: 3n * EVENT_COST });
  });

  it('a restart rebuilds the state from the database (holds of requests in flight are not kept: their events settle nothing)', async () => {
    const created = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: 'deepseek-r1', limitUsd: '0.004', window: 'day', enforce: 'hard' }, actor);
    const first = await startState();
    first.authorizer.authorize(request('req_1'));
    await ingest([nowEvent({ request_id: 'req_1' })]);
    await until('settled', () => first.authorizer.holds.size === 0);
    const before = first.cache.spendOf(created.budget.id, created.windowStart.getTime());
    await first.authorizer.stop();
    await first.cache.stop();

    const second = await startState();
    expect(second.cache.spendOf(created.budget.id, created.windowStart.getTime())).toBe(before);
    expect(second.cache.getBudget(created.budget.id)).toEqual(first.cache.getBudget(created.budget.id));
    // 2 events (0.00351994) spent of 0.004: the next request's hold does not fit.
    expect(second.authorizer.authorize(request('req_2'))).toMatchObject({ status: 402, limitSource: { scope: 'model', window: 'day' } });
  });

  it('releases a hold whose event never comes when the watermark passes it (plus the grace), or at its TTL', async () => {
    await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    const { authorizer } = await startState({ holdGraceMs: 200 });
    authorizer.authorize(request('req_lost'));
    authorizer.authorize(request('req_comes'));
    // Two partitions; both must pass the hold's time + grace. Only the first does: the hold stays.
    await ingest([nowEvent({ occurred_at: new Date(Date.now() + 1000).toISOString(), request_id: 'other_1' })], { partition: 0, offset: 0 });
    await ingest([nowEvent({ occurred_at: new Date(Date.now() - 60_000).toISOString(), request_id: 'other_2' })], { partition: 1, offset: 0 });
    await new Promise((r) => setTimeout(r, 400));
    expect(authorizer.stats).toMatchObject({ releasedByWatermark: 0, releasedByEvent: 0, releasedByTtl: 0 });
    expect(authorizer.holds.size).toBe(2);
    await ingest([nowEvent({ request_id: 'req_comes' })], { partition: 0, offset: 1 });
    await until('req_comes settles', () => authorizer.holds.get('acct_b', 'req_comes') === undefined);
    expect(authorizer.holds.get('acct_b', 'req_lost')).toBeDefined();
    await ingest([nowEvent({ occurred_at: new Date(Date.now() + 1000).toISOString(), request_id: 'other_3' })], { partition: 1, offset: 1 });
    await until('req_lost released by the watermark', () => authorizer.holds.size === 0);
    expect(authorizer.stats.releasedByWatermark).toBe(1);

    const ttl = await startState({ holdTtlMs: 150 });
    ttl.authorizer.authorize(request(`req_${randomUUID()}`));
    expect(ttl.authorizer.holds.size).toBe(1);
    await until('the TTL releases it', () => ttl.authorizer.holds.size === 0);
    expect(ttl.authorizer.stats.releasedByTtl).toBe(1);
  });

  it("asks for the usage topic's partition count at each settlement (the API passes the broker's count)", async () => {
    await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    let partitions = 3;
    const { authorizer } = await startState({ holdGraceMs: 200, topicPartitions: () => partitions });
    authorizer.authorize(request('req_lost'));
    await ingest([nowEvent({ occurred_at: new Date(Date.now() + 1000).toISOString(), request_id: 'other_1' })], { partition: 0, offset: 0 });
    await ingest([nowEvent({ occurred_at: new Date(Date.now() + 1000).toISOString(), request_id: 'other_2' })], { partition: 1, offset: 0 });
    // Both reported partitions are past the hold, but a third is said to exist and has not reported.
    const runs = authorizer.stats.settleRuns;
    await until('two more settlements', () => authorizer.stats.settleRuns >= runs + 2);
    expect(authorizer.holds.size).toBe(1);
    partitions = 2;
    await until('req_lost released by the watermark', () => authorizer.holds.size === 0);
    expect(authorizer.stats.releasedByWatermark).toBe(1);
  });

  it('settles in bounded batches: holds whose events never come do not starve a later one', async () => {
    await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    const { authorizer } = await startState({ maxHoldsPerSettle: 2, settleIntervalMs: 20 });
    for (let i = 1; i <= 5; i++) authorizer.authorize(request(`req_lost_${i}`));
    authorizer.authorize(request('req_late'));
    const runsBefore = authorizer.stats.settleRuns;
    await ingest([nowEvent({ request_id: 'req_late' })]);
    await until('req_late settles', () => authorizer.holds.get('acct_b', 'req_late') === undefined);
    // Six holds, two per statement: the one stored is reached within three statements, and the
    // rest stay (their events are not stored, the watermark is not past them).
    expect(authorizer.stats.settleRuns - runsBefore).toBeLessThanOrEqual(3);
    expect(authorizer.stats.releasedByEvent).toBe(1);
    expect(authorizer.holds.size).toBe(5);
  });

  it('allows unknown accounts and accounts without budgets, holding nothing', async () => {
    const { authorizer } = await startState();
    expect(authorizer.authorize(request('r', { accountId: 'acct_nobody' }))).toMatchObject({ decision: 'allow', remainingUnits: null, holdUnits: 0n });
    expect(authorizer.authorize(request('r'))).toMatchObject({ decision: 'allow', remainingUnits: null });
    expect(authorizer.holds.size).toBe(0);
  });
});
