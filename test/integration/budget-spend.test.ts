import { BudgetSpendRepository, createDatabase, PriceBookRepository, RepriceRepository, Transactor } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor } from '@tokenmeter/ingest';
import { BudgetsService } from '@tokenmeter/limits';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { budgetsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';
import { asMessages, ingestorOn } from '../helpers/ingest';

// Every event costs exactly $0.00175997 at deepseek-r1's seed rates (1000 in, 500 out, 200 cache read).
const EVENT_COST = '0.00175997';

describe('budget windows are kept in the ingest transaction, from the same costs as the rollups', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let budgets: BudgetsService;
  let spend: BudgetSpendRepository;

  // Usage in the current UTC hour, so it falls in every budget's current window.
  const nowEvent = (overrides: Partial<GatewayEvent> = {}) => aUsageEvent({ occurred_at: new Date().toISOString(), account_id: 'acct_b', ...overrides });
  const alerts = async () =>
    (
      await db.pool.query<{ budget_id: string; threshold_pct: string; direction: string }>(
        'SELECT budget_id, threshold_pct::float8::text AS threshold_pct, direction FROM budget_alerts ORDER BY id',
      )
    ).rows;

  beforeEach(async () => {
    ingestor = ingestorOn(db);
    budgets = budgetsServiceOn(db);
    spend = new BudgetSpendRepository(db.pool);
    await ingestor.ingest(asMessages([nowEvent({ account_id: 'acct_b' })]), 'http');
  });

  it('starts a budget at the window’s spend so far and adds new usage exactly, on both write paths', async () => {
    await ingestor.ingest(asMessages([nowEvent(), nowEvent()]), 'http');
    const created = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    expect(created.spendUsd).toBe('0.00527991'); // 3 events so far
    expect(created.budget.thresholds).toEqual(['50', '80', '100']);

    // Fast path (all new), then the set-based path: a redelivery mixed with new events.
    const fresh = [nowEvent(), nowEvent()];
    await ingestor.ingest(asMessages(fresh), 'http');
    await ingestor.ingest(asMessages([fresh[0], nowEvent(), fresh[1], nowEvent()]), 'http');

    const [view] = await budgets.listBudgets('acct_b');
    expect(view.spendUsd).toBe('0.01231979'); // 7 events x 0.00175997
    expect(view.remainingUsd).toBe('0.98768021');
    expect(view.state).toBe('ok');
    expect(await spend.drift()).toEqual([]);
  });

  it('counts only the budget’s key and model, and ignores usage before the window it was created in', async () => {
    await ingestor.ingest(asMessages([nowEvent({ api_key_id: 'key_a' }), nowEvent({ occurred_at: '2020-01-01T00:00:00Z', api_key_id: 'key_a' })]), 'http');
    await db.pool.query(`INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ('key_a', 'tm_test_a', 'x', 'account', 'acct_b')`);
    const keyBudget = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: 'key_a', model: null, limitUsd: '5', window: 'day', enforce: 'soft' }, actor);
    const otherModel = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: 'gpt-4o', limitUsd: '5', window: 'total', enforce: 'hard' }, actor);
    expect(keyBudget.spendUsd).toBe(EVENT_COST);
    expect(otherModel.spendUsd).toBe('0');

    // A late event from 2020 is before counts_from of the day budget, but a total budget counts from the epoch.
    await ingestor.ingest(asMessages([nowEvent({ api_key_id: 'key_a' }), nowEvent({ api_key_id: 'key_other' }), nowEvent({ occurred_at: '2020-01-02T00:00:00Z', api_key_id: 'key_a' })]), 'http');
    const views = new Map((await budgets.listBudgets('acct_b')).map((v) => [v.budget.id, v]));
    expect(views.get(keyBudget.budget.id)!.spendUsd).toBe('0.00351994');
    expect(views.get(otherModel.budget.id)!.spendUsd).toBe('0');
    expect(await spend.drift()).toEqual([]);
  });

  it('raises each threshold once, in the transaction that crosses it, whatever is redelivered', async () => {
    // Limit $0.01: 50% after 3 events (0.00527991), 80% after 5 (0.00879985), 100% after 6 (0.01055982).
    const b = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '0.01', window: 'day', enforce: 'hard' }, actor);
    const batch = [nowEvent(), nowEvent(), nowEvent(), nowEvent(), nowEvent()];
    await ingestor.ingest(asMessages(batch.slice(0, 2)), 'http');
    expect(await alerts()).toEqual([{ budget_id: b.budget.id, threshold_pct: '50', direction: 'up' }]);
    await ingestor.ingest(asMessages(batch), 'kafka'); // two redelivered, three new: 6 events in all
    await ingestor.ingest(asMessages(batch), 'kafka'); // all redelivered
    expect((await alerts()).map((a) => a.threshold_pct)).toEqual(['50', '80', '100']);
    expect((await budgets.getBudget(b.budget.id)).state).toBe('blocked');
  });

  it('keeps exact windows and one alert per threshold with several ingestors racing on one account', async () => {
    const b = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '0.1', window: 'month', thresholds: ['10', '20', '30', '40', '50', '60'], enforce: 'soft' }, actor);
    const others = [createDatabase(TEST_DATABASE_URL, 2), createDatabase(TEST_DATABASE_URL, 2)];
    try {
      const ingestors = others.map((d) => ingestorOn(d));
      // 40 more events: each threshold is crossed by exactly one of the racing transactions.
      const chunks = Array.from({ length: 20 }, () => [nowEvent(), nowEvent()]);
      await Promise.all(ingestors.map((ing, i) => (async () => {
        for (const chunk of chunks.filter((_, j) => j % 2 === i)) await ing.ingest(asMessages(chunk), 'kafka');
      })()));
    } finally {
      await Promise.all(others.map((d) => d.close()));
    }
    expect((await budgets.getBudget(b.budget.id)).spendUsd).toBe('0.07215877'); // 41 events
    expect((await alerts()).map((a) => a.threshold_pct)).toEqual(['10', '20', '30', '40', '50', '60']); // 72% in the end
    expect(await spend.drift()).toEqual([]);
  });

  it('counts every event once while budgets are created during ingestion', async () => {
    const racing = createDatabase(TEST_DATABASE_URL, 2);
    try {
      const ing = ingestorOn(racing);
      let stop = false;
      const traffic = (async () => {
        while (!stop) await ing.ingest(asMessages([nowEvent(), nowEvent(), nowEvent()]), 'kafka');
      })();
      for (let i = 0; i < 15; i++) {
        await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1000', window: 'day', enforce: 'hard' }, actor);
      }
      stop = true;
      await traffic;
    } finally {
      await racing.close();
    }
    const views = await budgets.listBudgets('acct_b');
    expect(views).toHaveLength(15);
    expect(await spend.drift()).toEqual([]);
  });

  it('moves budget spend with a reprice, and says once when it falls back under a threshold', async () => {
    const b = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '0.004', window: 'month', enforce: 'hard' }, actor);
    await ingestor.ingest(asMessages([nowEvent()]), 'http'); // 2 events: 0.00351994 = 88% of the limit
    expect((await alerts()).map((a) => `${a.threshold_pct} ${a.direction}`)).toEqual(['50 up', '80 up']);

    // Half price from the start of the month: 0.00175997 = 44%, under both thresholds.
    const start = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
    await new PriceBookRepository(db.pool).createPriceVersion({
      modelId: 'deepseek-r1', effectiveFrom: start, inputPerMTok: '0.2857', outputPerMTok: '1.14285', cacheReadPerMTok: '0.1143', cacheWritePerMTok: null,
    });
    const reprice = new RepriceService(new RepriceRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
    const range = { from: start, to: new Date(Date.now() + 3_600_000) };
    await reprice.repriceRange(new Transactor(db.pool), range, { dryRun: false });
    await reprice.repriceRange(new Transactor(db.pool), range, { dryRun: false }); // nothing changes twice

    expect((await budgets.getBudget(b.budget.id)).spendUsd).toBe('0.00175997');
    expect((await alerts()).map((a) => `${a.threshold_pct} ${a.direction}`)).toEqual(['50 up', '80 up', '50 down', '80 down']);
    expect(await spend.drift()).toEqual([]);
  });

  it('alerts at once for thresholds a lowered limit has already reached', async () => {
    await ingestor.ingest(asMessages([nowEvent()]), 'http');
    const b = await budgets.createBudget({ accountId: 'acct_b', apiKeyId: null, model: null, limitUsd: '1', window: 'month', enforce: 'hard' }, actor);
    expect(await alerts()).toEqual([]);
    const lowered = await budgets.updateBudget(b.budget.id, { limitUsd: '0.004' }, actor);
    expect(lowered.remainingUsd).toBe('0.00048006');
    expect((await alerts()).map((a) => a.threshold_pct)).toEqual(['50', '80']);
    await budgets.deleteBudget(b.budget.id, actor);
    expect(await budgets.listBudgets('acct_b')).toEqual([]);
  });
});
