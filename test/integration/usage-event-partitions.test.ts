/**
 * usage_events partitioned by UTC month (docs/operations.md, "Partitions and retention"): the
 * migration moves existing rows, every month ingest may accept finds a partition, and event_id
 * dedupe stays exact across months through usage_event_ids.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyMigrations } from '@tokenmeter/db/migrations';
import {
  createDatabase,
  EventReadRepository,
  PriceBookRepository,
  RepriceRepository,
  UsageEventPartitionsRepository,
  UsageEventsRepository,
  type Database,
} from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor, type IngestMessage } from '@tokenmeter/ingest';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { createScratchDatabase, withClient } from '../helpers/db';
import { openTestDatabase, resetDatabase, rollupDifferences, seedPriceBook, totals } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '../..');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma/migrations');
const PARTITIONING = '20261202032119_partitioned_usage_events';

const asMessages = (events: unknown[]): IngestMessage[] => events.map((value) => ({ value, key: null }));

describe('the migration to monthly partitions', () => {
  it('moves every existing event into its month, fills the dedupe, and keeps every value', async () => {
    const scratch = await createScratchDatabase('tokenmeter_partition_migration');
    const before = mkdtempSync(path.join(tmpdir(), 'tokenmeter-migrations-'));
    try {
      cpSync(MIGRATIONS_DIR, before, { recursive: true, filter: (src) => !src.includes(PARTITIONING) });
      await applyMigrations(scratch.url, before, () => undefined);
      const rowsBefore = await withClient(scratch.url, async (c) => {
        await c.query("INSERT INTO accounts (id) VALUES ('acct_m1'), ('acct_m2')");
        // 300 events from 2025-11-20 every 7 hours (to 2026-02-14), one at the last instant of a
        // month and one at the first instant of the next, and one with text that needs escaping.
        await c.query(
          `INSERT INTO usage_events (event_id, account_id, api_key_id, model, request_id, occurred_at, input_tokens, output_tokens,
             cache_read_tokens, cache_write_tokens, reasoning_tokens, usage_raw, usage_format, metadata, payload_hash,
             cost_usd, flags, source, invoice_id)
           SELECT 'evt_m_' || n, 'acct_m' || (1 + n % 2), CASE WHEN n % 3 = 0 THEN '' ELSE 'key_' || n % 5 END, 'deepseek-r1',
                  'req_' || n, timestamptz '2025-11-20T00:00:00Z' + n * interval '7 hours', n, 2 * n, 0, 0, 0,
                  '{"input_tokens":1}'::json, 'anthropic', CASE WHEN n = 7 THEN '{"note":"tab\\there"}'::json END, md5(n::text),
                  n * 0.000001, CASE WHEN n = 9 THEN '{exceeds_context_window}'::text[] ELSE '{}' END, 'kafka',
                  CASE WHEN n < 50 THEN 'inv_old' END
           FROM generate_series(1, 300) AS n
           UNION ALL
           SELECT 'evt_edge_' || k, 'acct_m1', '', 'gpt-4o', NULL, t, 1, 1, 0, 0, 0, '{}', 'openai', NULL, md5(k), NULL, '{}', 'http', NULL
           FROM (VALUES ('a', timestamptz '2025-12-31T23:59:59.999Z'), ('b', timestamptz '2026-01-01T00:00:00Z')) AS v(k, t)`,
        );
        return (await c.query('SELECT event_id, md5(u::text) AS row FROM usage_events u ORDER BY event_id')).rows;
      });
      expect(rowsBefore).toHaveLength(302);

      await applyMigrations(scratch.url, MIGRATIONS_DIR, () => undefined);

      await withClient(scratch.url, async (c) => {
        const kind = await c.query("SELECT relkind::text FROM pg_class WHERE relname = 'usage_events'");
        expect(kind.rows).toEqual([{ relkind: 'p' }]);
        // Every value as it was, column for column (the row text covers all 27 columns).
        const after = await c.query('SELECT event_id, md5(u::text) AS row FROM usage_events u ORDER BY event_id');
        expect(after.rows).toEqual(rowsBefore);
        // Each row in the partition of its UTC month, edges included.
        const misplaced = await c.query(
          `SELECT event_id FROM usage_events
           WHERE tableoid::regclass::text <> 'usage_events_p' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY_MM')`,
        );
        expect(misplaced.rows).toEqual([]);
        const edges = await c.query("SELECT event_id, tableoid::regclass::text AS part FROM usage_events WHERE event_id LIKE 'evt_edge_%' ORDER BY 1");
        expect(edges.rows).toEqual([
          { event_id: 'evt_edge_a', part: 'usage_events_p2025_12' },
          { event_id: 'evt_edge_b', part: 'usage_events_p2026_01' },
        ]);
        const ids = await c.query(
          `SELECT count(*)::int AS n FROM usage_event_ids i JOIN usage_events e
             ON (e.event_id, e.account_id, e.occurred_at, e.payload_hash) = (i.event_id, i.account_id, i.occurred_at, i.payload_hash)`,
        );
        expect(ids.rows[0].n).toBe(302);
        expect((await c.query('SELECT count(*)::int AS n FROM usage_event_ids')).rows[0].n).toBe(302);
      });
      const partitions = (await withPartitions(scratch.url)).map((p) => `${p.period}:${p.state}`);
      // The months with events, and last, this and next month whatever the data.
      const around = [-1, 0, 1].map((d) => {
        const now = new Date();
        const m = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + d, 1));
        return `${m.toISOString().slice(0, 7)}:attached`;
      });
      expect(partitions).toEqual([...new Set(['2025-11:attached', '2025-12:attached', '2026-01:attached', '2026-02:attached', ...around])].sort());
    } finally {
      rmSync(before, { recursive: true, force: true });
      await scratch.drop();
    }
  });
});

async function withPartitions(url: string) {
  const db = createDatabase(url, 1);
  try {
    return await new UsageEventPartitionsRepository(db.pool).listPartitions();
  } finally {
    await db.close();
  }
}

describe('ingest into monthly partitions', () => {
  let db: Database;
  let prices: PriceBookCache;
  let partitions: UsageEventPartitionsRepository;

  beforeAll(() => {
    db = openTestDatabase();
  });
  afterAll(() => db.close());
  beforeEach(async () => {
    await resetDatabase(db);
    await seedPriceBook(db);
    await dropMonthsBefore(db, '2025-01-01');
    prices = new PriceBookCache(new PriceBookRepository(db.pool));
    partitions = new UsageEventPartitionsRepository(db.pool);
  });

  const ingestorAt = (now: Date) => new UsageIngestor(new UsageEventsRepository(db.pool), prices, () => now);
  const monthsOf = async () => (await partitions.listPartitions()).map((p) => p.period);
  const partitionOf = async (eventId: string) =>
    (await db.pool.query<{ part: string }>('SELECT tableoid::regclass::text AS part FROM usage_events WHERE event_id = $1', [eventId])).rows.map((r) => r.part);

  it('makes the month of a late event from years ago, and of an event 5 minutes ahead across a month end, on demand', async () => {
    // The receive clock at the very end of a month no partition exists for yet (ahead-of-time
    // creation follows the real clock, so these months exist only if ingest makes them).
    const now = new Date('2031-03-31T23:57:00.000Z');
    expect(await monthsOf()).not.toContain('2031-04');
    const late = aUsageEvent({ occurred_at: '2019-06-01T00:00:00.000Z' });
    const ahead = aUsageEvent({ occurred_at: '2031-04-01T00:01:59.999Z' }); // 4m59.999s after receipt
    const tooFar = aUsageEvent({ occurred_at: '2031-04-01T00:02:00.001Z' }); // just over 5 minutes
    const current = aUsageEvent({ occurred_at: '2031-03-31T23:56:00.000Z' });
    const outcomes = await ingestorAt(now).ingest(asMessages([late, ahead, tooFar, current]), 'kafka');
    expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'rejected', 'accepted']);

    expect(await partitionOf(late.event_id)).toEqual(['usage_events_p2019_06']);
    expect(await partitionOf(ahead.event_id)).toEqual(['usage_events_p2031_04']);
    expect(await partitionOf(current.event_id)).toEqual(['usage_events_p2031_03']);
    expect(await monthsOf()).toEqual(expect.arrayContaining(['2019-06', '2031-03', '2031-04']));
    const t = await totals(db);
    expect(t.raw.requests).toBe('3');
    expect(await rollupDifferences(db)).toEqual([]);
  });

  it('makes no month for an event it rejects', async () => {
    const now = new Date('2033-07-31T23:59:00.000Z');
    const outcomes = await ingestorAt(now).ingest(asMessages([aUsageEvent({ occurred_at: '2033-08-01T00:05:00.001Z' })]), 'kafka');
    expect(outcomes.map((o) => o.status)).toEqual(['rejected']);
    expect(await monthsOf()).not.toContain('2033-08');
  });

  it('two writers meeting the same new month at once make it once and both store their events', async () => {
    const now = new Date('2026-12-02T00:00:00Z');
    const a = Array.from({ length: 40 }, () => aUsageEvent({ account_id: 'acct_a', occurred_at: '2018-02-10T10:00:00.000Z' }));
    const b = Array.from({ length: 40 }, () => aUsageEvent({ account_id: 'acct_b', occurred_at: '2018-02-20T10:00:00.000Z' }));
    const [ra, rb] = await Promise.all([ingestorAt(now).ingest(asMessages(a), 'kafka'), ingestorAt(now).ingest(asMessages(b), 'kafka')]);
    expect([...ra, ...rb].every((o) => o.status === 'accepted')).toBe(true);
    expect((await partitions.listPartitions()).filter((p) => p.period === '2018-02')).toEqual([
      { period: '2018-02', table: 'usage_events_p2018_02', state: 'attached' },
    ]);
    expect((await totals(db)).raw.requests).toBe('80');
  });

  it('keeps event_id unique across months: the same id with another occurred_at is a conflict, the same event a duplicate', async () => {
    const ingestor = ingestorAt(new Date('2026-11-28T12:00:00Z'));
    const e: GatewayEvent = aUsageEvent({ occurred_at: '2026-11-15T10:30:00.000Z' });
    const sameIdOtherMonth: GatewayEvent = { ...e, occurred_at: '2026-10-15T10:30:00.000Z' };
    const sameIdOtherAccount: GatewayEvent = { ...e, account_id: 'acct_other' };
    expect((await ingestor.ingest(asMessages([e]), 'kafka')).map((o) => o.status)).toEqual(['accepted']);
    // A chunk of only stored ids takes the set-based path; one with a new event, the COPY path first.
    const again = await ingestor.ingest(asMessages([sameIdOtherMonth, e, sameIdOtherAccount]), 'kafka');
    expect(again.map((o) => o.status)).toEqual(['conflict', 'duplicate', 'conflict']);
    const fresh = aUsageEvent({ occurred_at: '2026-10-01T00:00:00.000Z' });
    const mixed = await ingestor.ingest(asMessages([fresh, sameIdOtherMonth, e]), 'http');
    expect(mixed.map((o) => o.status)).toEqual(['accepted', 'conflict', 'duplicate']);

    const stored = await db.pool.query('SELECT event_id, tableoid::regclass::text AS part FROM usage_events ORDER BY occurred_at');
    expect(stored.rows).toEqual([
      { event_id: fresh.event_id, part: 'usage_events_p2026_10' },
      { event_id: e.event_id, part: 'usage_events_p2026_11' },
    ]);
    const conflicts = await db.pool.query('SELECT event_id, count(*)::int AS payloads FROM event_conflicts GROUP BY 1');
    expect(conflicts.rows).toEqual([{ event_id: e.event_id, payloads: 2 }]);
    expect((await totals(db)).raw.requests).toBe('2');
    expect(await rollupDifferences(db)).toEqual([]);
  });

  it('finds a receipt by event_id in its month, and nothing for an id never stored', async () => {
    const ingestor = ingestorAt(new Date('2026-11-28T12:00:00Z'));
    const events = ['2026-09-03T01:00:00.000Z', '2026-10-03T01:00:00.000Z', '2026-11-03T01:00:00.000Z'].map((occurred_at) => aUsageEvent({ occurred_at }));
    await ingestor.ingest(asMessages(events), 'kafka');
    const reads = new EventReadRepository(db.pool);
    const receipt = await reads.getEvent(events[1].event_id);
    expect(receipt).toMatchObject({ eventId: events[1].event_id, occurredAt: new Date('2026-10-03T01:00:00.000Z'), costUsd: '0.00175997' });
    expect(await reads.getEvent('evt_never_stored')).toBeUndefined();
    const listed = await reads.listEvents({ eventId: events[2].event_id, accountId: 'acct_test' }, 10);
    expect(listed.map((r) => r.eventId)).toEqual([events[2].event_id]);
  });

  it('reprices more than one chunk of unpriced events across months and accounts, each exactly once', async () => {
    const ingestor = ingestorAt(new Date('2026-11-28T12:00:00Z'));
    // 3 months x 4 accounts x 1,100 = 13,200 events: the reprice walks them 5,000 at a time.
    const events = ['2026-08', '2026-09', '2026-10'].flatMap((month) =>
      Array.from({ length: 4400 }, (_, i) =>
        aUsageEvent({
          account_id: `acct_${i % 4}`,
          model: 'brand-new-model',
          occurred_at: `${month}-${String(1 + (i % 28)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:00:00.000Z`,
          usage: { input_tokens: 1_000_000, output_tokens: 0 },
        }),
      ),
    );
    for (let i = 0; i < events.length; i += 5000) await ingestor.ingest(asMessages(events.slice(i, i + 5000)), 'kafka');
    expect((await totals(db)).raw).toMatchObject({ requests: '13200', unpriced: '13200' });

    const book = new PriceBookRepository(db.pool);
    await book.upsertModel({ id: 'brand-new-model', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    await book.createPriceVersion({
      modelId: 'brand-new-model',
      effectiveFrom: new Date('2026-01-01T00:00:00Z'),
      inputPerMTok: '0.1',
      outputPerMTok: '0.3',
      cacheReadPerMTok: '0.01',
      cacheWritePerMTok: null,
    });
    const reprice = new RepriceService(new RepriceRepository(db.pool), prices);
    const range = { from: new Date('2026-08-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z') };
    expect(await reprice.repriceUnpriced(range)).toEqual({ examined: 13200, priced: 13200 });
    const t = await totals(db);
    expect(t.raw).toMatchObject({ requests: '13200', unpriced: '0', cost_usd: '1320' });
    expect(t.rollup).toEqual(t.raw);
    expect(await reprice.repriceUnpriced(range)).toEqual({ examined: 0, priced: 0 });
  });
});

/**
 * Months other tests made far from now (2018, 2019, 2031...) would otherwise pile up in the shared
 * test database; they are empty after resetDatabase.
 */
async function dropMonthsBefore(db: Database, before: string): Promise<void> {
  const all = await new UsageEventPartitionsRepository(db.pool).listPartitions();
  const far = all.filter((p) => p.period < before.slice(0, 7) || p.period > '2030-12');
  for (const p of far) await db.pool.query(`DROP TABLE "${p.table}"`);
}
