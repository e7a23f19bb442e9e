import { SpendStateRepository } from '@tokenmeter/db';
import { UsageIngestor, type IngestMessage } from '@tokenmeter/ingest';
import { BudgetsService, SpendStateCache, SpendStatePublisher, type SpendStateJson } from '@tokenmeter/limits';
import type { Producer } from 'kafkajs';
import { aUsageEvent } from '../factories/usage-events';
import { readTopic, testKafka, uniqueName, until, withAdmin } from '../helpers/kafka';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { budgetsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';
import { ingestorOn } from '../helpers/ingest';

describe('the compacted spend-state topic carries each scope’s budget state when it changes (real broker)', () => {
  const kafka = testKafka('spend-state-test');
  const db = useTestDatabase();
  let producer: Producer;
  let cache: SpendStateCache;
  let publisher: SpendStatePublisher;
  let budgets: BudgetsService;
  let ingestor: UsageIngestor;
  let topic: string;

  const ingest = (events: unknown[]) => ingestor.ingest(events.map((value): IngestMessage => ({ value, key: null })), 'http');
  const nowEvent = (over = {}) => aUsageEvent({ account_id: 'acct_s', occurred_at: new Date().toISOString(), ...over });
  /** The latest value per key, as a compacted topic's reader ends up with. */
  const latest = async (count: number) => {
    const messages = await readTopic(kafka, topic, count);
    const byKey = new Map<string, SpendStateJson | null>();
    for (const m of messages) byKey.set(m.key!, m.value === '' ? null : (JSON.parse(m.value) as SpendStateJson));
    return { messages, byKey };
  };

  beforeAll(async () => {
    producer = kafka.producer();
    await producer.connect();
  });
  afterAll(() => producer.disconnect());

  beforeEach(async () => {
    ingestor = ingestorOn(db);
    budgets = budgetsServiceOn(db);
    await ingest([nowEvent()]);
    await db.pool.query(`INSERT INTO api_keys (id, prefix, secret_hash, role, account_id) VALUES ('key_s', 'tm_live_state000', 'unused', 'account', 'acct_s')`);
    topic = uniqueName('tokenmeter.spend.state.test');
    await withAdmin(kafka, (admin) => SpendStatePublisher.ensureTopic(admin, topic, 2));
    cache = new SpendStateCache(new SpendStateRepository(db.pool), { databaseUrl: TEST_DATABASE_URL, heartbeatMs: 50 });
    publisher = new SpendStatePublisher(cache, producer, { topic, debounceMs: 10, sweepMs: 60_000 });
  });
  afterEach(async () => {
    await publisher.stop();
    await cache.stop();
  });

  it('is compacted, publishes per account and per key, goes blocked at the limit, and tombstones a scope with no budget left', async () => {
    const config = await withAdmin(kafka, (admin) => admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['cleanup.policy'] }], includeSynonyms: false }));
    expect(config.resources[0].configEntries[0].configValue).toBe('compact');

    const account = await budgets.createBudget({ accountId: 'acct_s', apiKeyId: null, model: null, limitUsd: '0.004', window: 'month', enforce: 'hard' }, actor);
    const key = await budgets.createBudget({ accountId: 'acct_s', apiKeyId: 'key_s', model: null, limitUsd: '1', window: 'day', enforce: 'soft' }, actor);
    await cache.start();
    publisher.start();
    await until('the first state of both scopes is published', () => publisher.stats.published >= 2);

    await ingest([nowEvent({ api_key_id: 'key_s' })]); // 0.00351994: account budget at 88%
    await until('the account budget spend reaches the cache', () => cache.spendOf(account.budget.id, account.windowStart.getTime()) > 0n && publisher.stats.published >= 4);
    await ingest([nowEvent({ api_key_id: 'key_s' })]); // 0.00527991: past the hard limit
    await until('the blocked state is published', async () => publisher.stats.published >= 6);

    const { byKey } = await latest(6);
    expect(byKey.get('acct_s')).toMatchObject({
      account_id: 'acct_s',
      api_key_id: null,
      state: 'blocked',
      on_unreachable: 'allow',
      budgets: [{ budget_id: account.budget.id, window: 'month', limit_usd: '0.004', spend_usd: '0.00527991', remaining_usd: '-0.00127991', state: 'blocked' }],
    });
    expect(byKey.get('acct_s/key_s')).toMatchObject({ state: 'ok', budgets: [{ budget_id: key.budget.id, spend_usd: '0.00351994', state: 'ok' }] });

    const before = publisher.stats.published;
    await budgets.deleteBudget(key.budget.id, actor);
    await until('the tombstone is published', () => publisher.stats.tombstones === 1);
    expect(publisher.stats.published).toBe(before + 1); // nothing else changed, so nothing else was sent
    const after = await latest(before + 1);
    expect(after.byKey.get('acct_s/key_s')).toBeNull();
  });
});
