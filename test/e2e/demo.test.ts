import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { loadConfig } from '@tokenmeter/config';
import { ApiKeysRepository, type Database } from '@tokenmeter/db';
import { ApiKeyAuthenticator } from '@tokenmeter/auth';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { DEMO_PRICE_CHANGE, runDemo } from '../../scripts/demo';
import { DEMO_ACCOUNTS } from '../../scripts/demo-accounts';
import { createTopics, KAFKA_BROKERS, readTopic, testKafka, uniqueName } from '../helpers/kafka';
import { openTestDatabase, resetDatabase, seedPriceBook, storedEventCount, TEST_DATABASE_URL, totals } from '../helpers/tokenmeter-db';
import { ingestorOn } from '../helpers/ingest';

jest.setTimeout(60_000);

/** `npm run demo` against the real broker and the real ingestor code, on a topic of its own. */
describe('npm run demo', () => {
  let db: Database;
  let kafka: Kafka;
  let consumer: UsageConsumer;

  beforeAll(async () => {
    db = openTestDatabase();
    kafka = testKafka();
    await resetDatabase(db);
    await seedPriceBook(db);
  });
  afterAll(async () => {
    await consumer?.stop().catch(() => undefined);
    await db.close();
  });

  const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);

  it('publishes weeks of traffic the ingestor stores once, priced at event time; a rerun stores nothing new', async () => {
    const topic = uniqueName('demo.usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 3);
    const ingestor = ingestorOn(db);
    consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 500 }, pino({ level: 'silent' }));
    await consumer.start();

    const config = loadConfig({ ...process.env, DATABASE_URL: TEST_DATABASE_URL, KAFKA_BROKERS: KAFKA_BROKERS.join(','), KAFKA_USAGE_TOPIC: topic });
    const now = new Date();
    const output: string[] = [];
    const first = await runDemo(config, { events: 1500, days: 21, now, stallSeconds: 15, log: (line) => output.push(line) });

    // Everything valid is stored exactly once: redeliveries and the conflicting reuse are not.
    expect(first.caughtUp).toBe(true);
    expect(first.traffic.events).toBeGreaterThan(1400);
    expect(first.traffic.redeliveries).toBeGreaterThan(0);
    expect(first.messages).toBe(first.traffic.events + first.traffic.redeliveries + first.traffic.malformed.length + 1);
    expect(await storedEventCount(db)).toBe(first.traffic.events);
    expect(first.newEvents).toBe(first.traffic.events);
    const t = await totals(db);
    expect(t.raw.unpriced).toBe('0');
    expect(t.rollup).toEqual(t.raw);

    // Every malformed message is rejected with the code it was built to provoke, and dead-lettered.
    const rejected = await db.pool.query('SELECT reason_code FROM rejected_events WHERE topic = $1', [topic]);
    expect(rejected.rows.map((r) => r.reason_code).sort()).toEqual(first.traffic.malformed.map((m) => m.code).sort());
    expect(new Set(rejected.rows.map((r) => r.reason_code))).toEqual(new Set(['invalid_json', 'schema', 'invariant', 'metadata_too_large', 'too_far_in_future']));
    expect(await readTopic(kafka, `${topic}.dlq`, first.traffic.malformed.length)).toHaveLength(first.traffic.malformed.length);
    expect((await db.pool.query('SELECT event_id FROM event_conflicts')).rows).toEqual([{ event_id: first.traffic.conflictEventId }]);

    // All four usage shapes, with cache reads, and cache writes where the provider reports them.
    const shapes = await db.pool.query(
      'SELECT usage_format, sum(cache_read_tokens)::text AS cache_read, sum(cache_write_tokens)::text AS cache_write FROM usage_events GROUP BY 1 ORDER BY 1',
    );
    expect(shapes.rows.map((r) => r.usage_format)).toEqual(['anthropic', 'canonical', 'deepseek', 'openai']);
    for (const r of shapes.rows) expect(BigInt(r.cache_read)).toBeGreaterThan(0n);
    expect(BigInt(shapes.rows.find((r) => r.usage_format === 'anthropic').cache_write)).toBeGreaterThan(0n);

    // The price change splits deepseek-r1 at its effective_from, each side priced exactly at its own rates.
    expect(first.priceChange.created).toBe(true);
    const change = first.priceChange.version;
    expect(change.effectiveFrom.getTime()).toBeGreaterThan(first.traffic.from.getTime());
    expect(change.effectiveFrom.getTime()).toBeLessThan(now.getTime());
    const r1 = await db.pool.query(
      `SELECT e.occurred_at >= $1 AS after, e.price_version_id::text AS version, count(*)::int AS n,
              bool_and(e.cost_usd = (e.input_tokens * v.input_per_mtok + e.output_tokens * v.output_per_mtok
                 + e.cache_read_tokens * v.cache_read_per_mtok + e.cache_write_tokens * coalesce(v.cache_write_per_mtok, v.input_per_mtok)) / 1000000) AS exact
       FROM usage_events e JOIN price_versions v ON v.id = e.price_version_id
       WHERE e.model = $2 GROUP BY 1, 2 ORDER BY 1`,
      [change.effectiveFrom, DEMO_PRICE_CHANGE.modelId],
    );
    expect(r1.rows).toEqual([
      { after: false, version: first.priceChange.previous.id, n: expect.any(Number), exact: true },
      { after: true, version: change.id, n: expect.any(Number), exact: true },
    ]);

    // Named accounts; the printed keys sign in, once each, with the right roles.
    const accounts = await db.pool.query('SELECT id, name FROM accounts ORDER BY id');
    expect(accounts.rows).toEqual(DEMO_ACCOUNTS.map((a) => ({ id: a.id, name: a.name })).sort((x, y) => x.id.localeCompare(y.id)));
    const authenticator = new ApiKeyAuthenticator(new ApiKeysRepository(db.pool));
    expect(first.keys.map((k) => [k.role, k.accountId])).toEqual([['admin', null], ['account', DEMO_ACCOUNTS[0].id]]);
    for (const k of first.keys) {
      expect(await authenticator.authenticate(k.key)).toMatchObject({ ok: true, principal: { role: k.role, accountId: k.accountId } });
      expect(output.filter((line) => line.includes(k.key))).toHaveLength(1);
    }

    // Run again: the same event ids with the same payloads, so nothing new is stored or charged.
    const price = await count('SELECT count(*) AS n FROM price_versions');
    const second = await runDemo(config, { events: 1500, days: 21, now, stallSeconds: 15, log: (line) => output.push(line) });
    expect(second.caughtUp).toBe(true);
    expect(second.newEvents).toBe(0);
    expect(await storedEventCount(db)).toBe(first.traffic.events);
    expect(await totals(db)).toEqual(t);
    expect(await count('SELECT count(*) AS n FROM event_conflicts')).toBe(1);
    // Malformed messages are new messages each run (rejected_events keeps one row per offset).
    expect(await count('SELECT count(*) AS n FROM rejected_events')).toBe(2 * first.traffic.malformed.length);
    expect(second.priceChange).toMatchObject({ created: false, version: { id: change.id } });
    expect(await count('SELECT count(*) AS n FROM price_versions')).toBe(price);
    expect(second.accounts.present).toHaveLength(DEMO_ACCOUNTS.length);
    expect(second.keys).toEqual([]);
    expect(await count('SELECT count(*) AS n FROM api_keys')).toBe(2);
    expect(output.join('\n')).toContain('this run\'s messages were all duplicates');
  });
});
