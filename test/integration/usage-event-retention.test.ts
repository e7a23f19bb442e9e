/**
 * npm run db:retention (docs/operations.md, "Partitions and retention"): drops months of raw
 * events only once nothing can bill them again, never touches rollups, invoices or the event_id
 * dedupe, audits every drop, and survives a run stopped half way.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { AuditLogRepository, PriceBookRepository, Transactor, UsageEventPartitionsRepository, UsageEventsRepository } from '@tokenmeter/db';
import { EventRetentionService, PriceBookCache, RETENTION_AUDIT_ACTION, UsageIngestor, type RetentionOptions } from '@tokenmeter/ingest';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { TEST_DATABASE_URL } from '../helpers/db';
import { ingest, invoicingFor, setIngestProgress } from '../helpers/invoicing';
import { StripeProxy } from '../helpers/stripe-proxy';
import { useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

const ROOT = path.resolve(__dirname, '../..');
const NOW = new Date('2026-12-02T00:00:00Z');
const actor = { keyId: null, requestId: 'test:retention' };

describe('raw-event retention', () => {
  const db = useTestDatabase();
  let proxy: StripeProxy;
  let partitions: UsageEventPartitionsRepository;
  let retention: EventRetentionService;

  beforeAll(async () => {
    proxy = await new StripeProxy().start();
  });
  afterAll(() => proxy.stop());
  beforeEach(async () => {
    // No month older than the ones kept (2026-10 on), whatever an earlier test left: each test
    // makes the months it uses by ingesting into them.
    for (const p of await new UsageEventPartitionsRepository(db.pool).listPartitions()) {
      if (p.state === 'detach_pending') await db.pool.query(`ALTER TABLE usage_events DETACH PARTITION "${p.table}" FINALIZE`);
      if (p.state !== 'attached' || p.period < '2026-10') await db.pool.query(`DROP TABLE "${p.table}"`);
    }
    await setIngestProgress(db, new Date('2026-12-01T02:00:00Z'));
    partitions = new UsageEventPartitionsRepository(db.pool);
    retention = new EventRetentionService(partitions, new AuditLogRepository(db.pool), new Transactor(db.pool));
  });

  const close = (period: string, finalize = true) => invoicingFor(db, proxy.url, () => NOW).closer.close(period, { finalize });
  const run = (options: Partial<RetentionOptions> = {}) => retention.run({ keepMonths: 2, dryRun: false, now: NOW, actor, ...options });
  const byPeriod = async (options: Partial<RetentionOptions> = {}) =>
    Object.fromEntries((await run(options)).months.map((m) => [m.period, { action: m.action, events: m.events, reasons: m.reasons }]));
  const states = async () => Object.fromEntries((await partitions.listPartitions()).map((p) => [p.period, p.state]));
  const eventsIn = async (month: string) =>
    Number((await db.pool.query(`SELECT count(*) FROM usage_events WHERE to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') = $1`, [month])).rows[0].count);
  const untouched = async () => ({
    rollups: (await db.pool.query('SELECT * FROM usage_hourly ORDER BY account_id, api_key_id, model, hour')).rows,
    invoices: (await db.pool.query('SELECT * FROM invoices ORDER BY id')).rows,
    lines: (await db.pool.query('SELECT * FROM invoice_lines ORDER BY id')).rows,
    ids: (await db.pool.query('SELECT * FROM usage_event_ids ORDER BY event_id')).rows,
  });
  const ingestNow = (events: GatewayEvent[]) =>
    new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)), () => new Date('2026-12-15T00:00:00Z')).ingest(
      events.map((value) => ({ value, key: null })),
      'kafka',
    );

  const at = (month: string, day: number) => `${month}-${String(day).padStart(2, '0')}T10:00:00.000Z`;

  it('drops only a month whose every event is on an invoice past draft; a dry run says so and changes nothing', async () => {
    const june = [aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 3) }), aUsageEvent({ account_id: 'acct_b', occurred_at: at('2026-06', 30) })];
    await ingest(db, [
      ...june,
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-07', 4) }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-08', 5) }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-08', 6), model: 'no-such-model' }),
      aUsageEvent({ account_id: 'acct_b', occurred_at: at('2026-09', 7) }),
      aUsageEvent({ account_id: 'acct_b', occurred_at: at('2026-10', 8) }),
    ]);
    await close('2026-06');
    await close('2026-07', false); // stays a draft
    await close('2026-08'); // its unpriced event is on no invoice
    await close('2026-09');
    // Late September usage after September was finalized: the October draft takes it.
    await ingest(db, [aUsageEvent({ account_id: 'acct_b', occurred_at: at('2026-09', 29) })]);
    await close('2026-10', false);
    const before = await untouched();

    const dry = await byPeriod({ dryRun: true });
    expect(dry).toEqual({
      '2026-06': { action: 'would_drop', events: 2, reasons: [] },
      '2026-07': {
        action: 'kept',
        events: 1,
        reasons: ['some events are on a draft invoice, which is rebuilt from them', 'an invoice of 2026-07 is still a draft'],
      },
      '2026-08': { action: 'kept', events: 2, reasons: ['1 of 2 events are on no invoice (unbilled late usage, or unpriced)'] },
      '2026-09': {
        action: 'kept',
        events: 2,
        reasons: ['some events are on a draft invoice, which is rebuilt from them', 'some events are billed on an invoice of 2026-10, a month kept, which reads them'],
      },
    });
    expect(await eventsIn('2026-06')).toBe(2);
    expect(await untouched()).toEqual(before);

    const report = await byPeriod();
    expect(report['2026-06']).toEqual({ action: 'dropped', events: 2, reasons: [] });
    expect(Object.values(report).map((m) => m.action)).toEqual(['dropped', 'kept', 'kept', 'kept']);
    expect(await states()).not.toHaveProperty('2026-06');
    expect(await states()).toMatchObject({ '2026-07': 'attached', '2026-08': 'attached', '2026-09': 'attached', '2026-10': 'attached' });
    expect(await eventsIn('2026-06')).toBe(0);
    expect([await eventsIn('2026-07'), await eventsIn('2026-08'), await eventsIn('2026-09')]).toEqual([1, 2, 2]);
    // Rollups, invoices, their lines and the dedupe exactly as they were.
    expect(await untouched()).toEqual(before);

    const audit = await db.pool.query('SELECT actor_key_id, action, target_type, target_id, before, after, request_id FROM audit_log');
    expect(audit.rows).toEqual([
      {
        actor_key_id: null,
        action: RETENTION_AUDIT_ACTION,
        target_type: 'usage_events_month',
        target_id: '2026-06',
        before: {
          table: 'usage_events_p2026_06',
          events: 2,
          claiming_invoices: [{ period: '2026-06', status: 'finalized' }],
          period_invoice_statuses: ['finalized'],
          keep_months: 2,
        },
        after: null,
        request_id: 'test:retention',
      },
    ]);

    // A second run finds nothing more to drop.
    expect(Object.values(await byPeriod()).map((m) => m.action)).toEqual(['kept', 'kept', 'kept']);
  });

  it('still knows every event of a dropped month: a redelivery is a duplicate, a changed payload a conflict, nothing is counted again', async () => {
    const june = [aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 3) }), aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 4) })];
    await ingest(db, june);
    await close('2026-06');
    expect((await run()).months.map((m) => m.action)).toEqual(['dropped']);
    const before = await untouched();

    const changed: GatewayEvent = { ...june[1], usage: { input_tokens: 5, output_tokens: 5 } };
    const outcomes = await ingestNow([june[0], changed, june[1]]);
    expect(outcomes.map((o) => o.status)).toEqual(['duplicate', 'conflict', 'duplicate']);
    expect(await untouched()).toEqual(before);
    // Nothing was inserted, so the month was not even made again.
    expect(await states()).not.toHaveProperty('2026-06');
    const { rows } = await db.pool.query('SELECT event_id, existing_hash = (SELECT payload_hash FROM usage_event_ids WHERE event_id = $1) AS against_stored FROM event_conflicts', [june[1].event_id]);
    expect(rows).toEqual([{ event_id: june[1].event_id, against_stored: true }]);

    // A NEW event for the dropped month is usage like any other: its month is made again and kept until billed.
    const late = aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 20) });
    expect((await ingestNow([late])).map((o) => o.status)).toEqual(['accepted']);
    expect(await states()).toMatchObject({ '2026-06': 'attached' });
    expect(await byPeriod()).toEqual({
      '2026-06': { action: 'kept', events: 1, reasons: ['1 of 1 events are on no invoice (unbilled late usage, or unpriced)'] },
    });
  });

  it('after a run stopped half way: an event for the detached month puts it back with its rows; otherwise the next run drops it', async () => {
    await ingest(db, [
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-05', 3) }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 3) }),
      aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 4) }),
    ]);
    await close('2026-05');
    await close('2026-06');
    // What a run leaves when it stops right after DETACH CONCURRENTLY.
    await partitions.detachConcurrently('usage_events_p2026_05');
    await partitions.detachConcurrently('usage_events_p2026_06');
    expect(await states()).toMatchObject({ '2026-05': 'detached', '2026-06': 'detached' });
    expect(await eventsIn('2026-06')).toBe(0);

    // A dry run reports the detached months and changes nothing.
    expect(Object.values(await byPeriod({ dryRun: true })).map((m) => m.action)).toEqual(['would_drop', 'would_drop']);
    expect(await states()).toMatchObject({ '2026-05': 'detached', '2026-06': 'detached' });

    // Late June usage arrives: ingest attaches the detached June table back, rows and all.
    expect((await ingestNow([aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 25) })])).map((o) => o.status)).toEqual(['accepted']);
    expect(await states()).toMatchObject({ '2026-05': 'detached', '2026-06': 'attached' });
    expect(await eventsIn('2026-06')).toBe(3);

    expect(await byPeriod()).toEqual({
      '2026-05': { action: 'dropped', events: 1, reasons: [] },
      '2026-06': { action: 'kept', events: 3, reasons: ['1 of 3 events are on no invoice (unbilled late usage, or unpriced)'] },
    });
    expect(await states()).not.toHaveProperty('2026-05');

    // The next close bills the late event (July's invoice, as late usage); then June may go.
    await close('2026-07');
    expect(await byPeriod()).toEqual({ '2026-06': { action: 'dropped', events: 3, reasons: [] } });
    const audit = await db.pool.query(`SELECT target_id FROM audit_log WHERE action = $1 ORDER BY id`, [RETENTION_AUDIT_ACTION]);
    expect(audit.rows.map((r) => r.target_id)).toEqual(['2026-05', '2026-06']);
  });

  it('keeps a month an account has no invoice of, and one whose late usage is billed on a kept month\'s invoice', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 3) }), aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-07', 3) })]);
    await close('2026-06');
    await close('2026-07');
    // acct_b's only June usage arrives after June was closed: July is final too, so the August close bills it.
    await ingest(db, [aUsageEvent({ account_id: 'acct_b', occurred_at: at('2026-06', 29) }), aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-07', 30) })]);
    await close('2026-08');
    // acct_a's late July usage: billed on November's invoice, a month kept.
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-07', 31) })]);
    await close('2026-11');
    expect(await byPeriod()).toEqual({
      '2026-06': { action: 'kept', events: 2, reasons: ['1 account(s) with events in 2026-06 have no invoice of 2026-06'] },
      '2026-07': { action: 'kept', events: 3, reasons: ['some events are billed on an invoice of 2026-11, a month kept, which reads them'] },
    });
  });

  it('npm run db:retention: a dry run prints what it would do; a bad --keep-months is refused', async () => {
    await ingest(db, [aUsageEvent({ account_id: 'acct_a', occurred_at: at('2026-06', 3) })]);
    await close('2026-06');
    const cli = (...args: string[]) =>
      spawnSync('npm', ['run', '--silent', 'db:retention', '--', ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
        encoding: 'utf8',
        timeout: 120_000,
      });

    const dry = cli('--keep-months', '2', '--dry-run');
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    const lines = dry.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Dry run: nothing is changed\. Keeping \d{4}-\d{2} and later\.$/);
    expect(lines).toContain('2026-06  would drop  usage_events_p2026_06 (1 events)');
    expect(JSON.parse(lines[lines.length - 1])).toMatchObject({ dry_run: true, dropped: 0, would_drop: 1 });
    expect(await states()).toMatchObject({ '2026-06': 'attached' });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBe(0);

    const bad = cli('--keep-months', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--keep-months must be a whole number of months, at least 1');
    expect(cli('--dry-run').stderr).toContain('--keep-months is required');
  });
});
