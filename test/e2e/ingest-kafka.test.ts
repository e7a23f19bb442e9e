import pino from 'pino';
import { createDatabase, PriceBookRepository, RepriceRepository, UsageEventsRepository, type Database } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor } from '@tokenmeter/ingest';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { aUsageEvent, defaultEventsCostUsd, openAiUsage } from '../factories/usage-events';
import { committedOffsets, createTopics, produceRaw, publishUsage, readTopic, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { TcpProxy } from '../helpers/tcp-proxy';
import { storedEventCount, TEST_DATABASE_URL, totals, useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const silent = pino({ level: 'silent' });

describe('ingestor against a real Kafka broker and Postgres', () => {
  const db = useTestDatabase();
  const kafka = testKafka();
  const consumers: UsageConsumer[] = [];

  function startConsumer(topic: string, groupId: string, database: Database = db, chunkSize = 1000): UsageConsumer {
    const ingestor = new UsageIngestor(
      new UsageEventsRepository(database.pool),
      new PriceBookCache(new PriceBookRepository(database.pool)),
    );
    const consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId, chunkSize }, silent);
    consumers.push(consumer);
    return consumer;
  }

  const storedCount = () => storedEventCount(db);

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop().catch(() => undefined)));
  });

  it('stores duplicates once, prices out-of-order events by their own time, dead-letters malformed ones', async () => {
    const topic = uniqueName('usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 3);
    // 300 distinct events spread over 30 days, published in shuffled (out-of-order) time.
    const events = Array.from({ length: 300 }, (_, i) =>
      aUsageEvent({ account_id: `acct_${i % 5}`, occurred_at: new Date(Date.UTC(2026, 10, 1 + ((i * 7) % 28), i % 24, i % 60)).toISOString() }),
    );
    const dupes = events.slice(0, 50);
    const conflict = { ...events[60], usage: { input_tokens: 1, output_tokens: 1 } };
    const malformed = [
      { key: 'acct_0', value: '{"event_id": "evt_broken", ' },
      { key: 'acct_0', value: JSON.stringify({ ...aUsageEvent(), event_id: 'evt with spaces' }) },
      { key: 'acct_0', value: JSON.stringify({ ...aUsageEvent(), event_id: 'evt_reasoning', usage: openAiUsage(100, 0, 10, 11) }) },
    ];
    await publishUsage(topic, events);
    await produceRaw(kafka, topic, malformed);
    await publishUsage(topic, [...dupes, conflict]);

    const groupId = uniqueName('group');
    await startConsumer(topic, groupId).start();
    const total = events.length + malformed.length + dupes.length + 1;
    await waitFor('all messages committed', async () => {
      const { rows } = await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic]);
      return rows[0].n === total;
    });

    const t = await totals(db);
    expect(t.raw).toEqual({
      requests: '300',
      unpriced: '0',
      input_tokens: '300000',
      output_tokens: '150000',
      cache_read_tokens: '60000',
      cache_write_tokens: '0',
      reasoning_tokens: '0',
      input_cost_usd: '0.17142', // 300 x 1000 x 0.5714 / 1e6
      output_cost_usd: '0.342855',
      cache_read_cost_usd: '0.013716',
      cache_write_cost_usd: '0',
      cost_usd: defaultEventsCostUsd(300),
    });
    expect(t.rollup).toEqual(t.raw);

    const rejected = await db.pool.query('SELECT reason_code, reason FROM rejected_events ORDER BY "offset"');
    expect(rejected.rows.map((r) => r.reason_code).sort()).toEqual(['invalid_json', 'invariant', 'schema']);
    expect((await db.pool.query('SELECT event_id FROM event_conflicts')).rows).toEqual([{ event_id: events[60].event_id }]);

    const dlq = await readTopic(kafka, `${topic}.dlq`, 3);
    expect(dlq).toHaveLength(3);
    expect(dlq.map((m) => m.headers['x-reject-code']).sort()).toEqual(['invalid_json', 'invariant', 'schema']);
    expect(dlq.every((m) => m.headers['x-original-topic'] === topic && m.headers['x-reject-reason'].length > 0)).toBe(true);
    expect(dlq.map((m) => m.value)).toContain('{"event_id": "evt_broken", ');

    // Offsets were committed for everything, and only after the database had it.
    const offsets = await committedOffsets(kafka, groupId, topic);
    const progress = await db.pool.query('SELECT partition, next_offset::text FROM ingest_progress WHERE topic = $1', [topic]);
    for (const row of progress.rows) expect(offsets[row.partition]).toBe(row.next_offset);
  });

  it('keeps usage of an unknown model as unpriced and prices it once a price exists', async () => {
    const topic = uniqueName('usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 1);
    const events = Array.from({ length: 40 }, (_, i) =>
      aUsageEvent({ model: 'gpt-next', occurred_at: `2026-11-${String(10 + (i % 10)).padStart(2, '0')}T08:00:00.000Z`, usage: { input_tokens: 500_000, output_tokens: 250_000 } }),
    );
    await publishUsage(topic, events);
    await startConsumer(topic, uniqueName('group')).start();
    await waitFor('40 events stored', async () => (await storedCount()) === 40);
    expect((await totals(db)).raw).toMatchObject({ requests: '40', cost_usd: '0', unpriced: '40' });

    const prices = new PriceBookRepository(db.pool);
    await prices.upsertModel({ id: 'gpt-next', displayName: null, provider: 'openai', contextWindow: null, maxOutputTokens: null });
    await prices.createPriceVersion({ modelId: 'gpt-next', effectiveFrom: new Date('2026-11-15T00:00:00Z'), inputPerMTok: '2', outputPerMTok: '8', cacheReadPerMTok: '0.5', cacheWritePerMTok: null });
    const reprice = new RepriceService(new RepriceRepository(db.pool), new PriceBookCache(prices));
    // Only events on or after Nov 15 have a price in force; the rest stay unpriced, not lost.
    expect(await reprice.repriceUnpriced({ from: new Date('2026-11-01Z'), to: new Date('2026-12-01Z') })).toEqual({ examined: 40, priced: 20 });
    const t = await totals(db);
    // 20 x (0.5 x 2 + 0.25 x 8) = 60
    expect(t.raw).toMatchObject({ requests: '40', cost_usd: '60', unpriced: '20' });
    expect(t.rollup).toEqual(t.raw);
  });

  it('pauses through a database outage and then stores everything exactly once', async () => {
    const topic = uniqueName('usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(TEST_DATABASE_URL).port || 5432));
    await proxy.start();
    const proxied = new URL(TEST_DATABASE_URL);
    proxied.port = String(proxy.port);
    const flakyDb = createDatabase(proxied.toString(), 4);
    try {
      const consumer = startConsumer(topic, uniqueName('group'), flakyDb, 200);
      await consumer.start();
      // Several accounts, so the events (keyed by account) spread over both partitions.
      const first = Array.from({ length: 1000 }, (_, i) => aUsageEvent({ account_id: `acct_${i % 8}` }));
      await publishUsage(topic, first);
      await waitFor('first events stored', async () => (await storedCount()) === 1000);

      proxy.cut();
      const second = Array.from({ length: 1000 }, (_, i) => aUsageEvent({ account_id: `acct_${i % 8}` }));
      await publishUsage(topic, second);
      await waitFor('consumer noticed the outage', async () => consumer.stats.transientFailures > 0);
      expect(await storedCount()).toBe(1000);

      proxy.restore();
      await waitFor('all events stored after the outage', async () => (await storedCount()) === 2000, 90_000);
      const t = await totals(db);
      expect(t.raw).toMatchObject({ requests: '2000', cost_usd: defaultEventsCostUsd(2000) });
      expect(t.rollup).toEqual(t.raw);
    } finally {
      await Promise.all(consumers.splice(0).map((c) => c.stop().catch(() => undefined)));
      await flakyDb.close().catch(() => undefined);
      await proxy.stop();
    }
  });
});
