import { Client } from 'pg';
import { allocateCredits, costUnitsToString, type CreditGrantTerms, type CreditUsage } from '@tokenmeter/billing';
import { CreditUsageRepository, PriceBookRepository, RepriceRepository, Transactor } from '@tokenmeter/db';
import { PriceBookCache, RepriceService, UsageIngestor } from '@tokenmeter/ingest';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { asMessages, ingestorOn } from '../helpers/ingest';

const terms = (over: Partial<CreditGrantTerms> & { id: string }): CreditGrantTerms => ({
  category: 'promotional',
  priority: 0,
  effectiveAt: new Date('2026-10-01T00:00:00Z'),
  expiresAt: null,
  models: [],
  createdAt: new Date('2026-10-01T00:00:00Z'),
  ...over,
});
const show = (usage: CreditUsage[]) => usage.map((u) => `${u.at.toISOString()} ${u.model} ${costUnitsToString(u.costUnits)} ${u.servicePeriod}`);

describe('the usage credits are allocated over: rollup hours, boundary-hour events, late events of invoiced months', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let reader: CreditUsageRepository;
  const ev = (occurredAt: string, over: Partial<GatewayEvent> = {}) => aUsageEvent({ account_id: 'acct_c', occurred_at: occurredAt, ...over });

  beforeEach(async () => {
    ingestor = ingestorOn(db);
    reader = new CreditUsageRepository(db.pool);
  });

  it('reads whole hours from the rollups and boundary hours event by event: one ms before expires_at draws, expires_at does not', async () => {
    const expiresAt = new Date('2026-11-10T10:30:00.000Z');
    await ingestor.ingest(
      asMessages([
        ev('2026-11-10T09:05:00.000Z'),
        ev('2026-11-10T09:55:00.000Z', { api_key_id: 'key_other' }),
        ev('2026-11-10T10:29:59.999Z'),
        ev('2026-11-10T10:30:00.000Z'),
        ev('2026-11-10T10:45:00.000Z'),
        ev('2026-11-10T11:00:00.000Z'),
        ev('2026-11-10T12:00:00.000Z'), // after every grant: left out
        ev('2026-11-10T09:30:00.000Z', { model: 'gpt-4o', usage: { input_tokens: 1000, output_tokens: 0 } }),
      ]),
      'http',
    );
    // g1 ends at 10:30 exactly, g2 starts then: the 10:00 hour is a boundary hour, read event by event.
    const g1 = terms({ id: 'g1', expiresAt });
    const g2 = terms({ id: 'g2', effectiveAt: expiresAt, expiresAt: new Date('2026-11-10T12:00:00.000Z'), category: 'paid' });
    const usage = await reader.creditUsage('acct_c', { grants: [g1, g2] });
    expect(show(usage)).toEqual([
      '2026-11-10T09:00:00.000Z deepseek-r1 0.00351994 2026-11', // two events, two keys: one piece
      '2026-11-10T09:00:00.000Z gpt-4o 0.0025 2026-11',
      '2026-11-10T10:29:59.999Z deepseek-r1 0.00175997 2026-11',
      '2026-11-10T10:30:00.000Z deepseek-r1 0.00175997 2026-11',
      '2026-11-10T10:45:00.000Z deepseek-r1 0.00175997 2026-11',
      '2026-11-10T11:00:00.000Z deepseek-r1 0.00175997 2026-11',
    ]);
    // One ms before expires_at draws on g1; the event at expires_at (g2's effective_at) on g2.
    const pools = [
      { ...g1, availableUnits: 100_000_000_000_000_000_000n },
      { ...g2, availableUnits: 10_000_000_000_000_000_000_000n },
    ];
    const { remaining, uncoveredUnits } = allocateCredits(pools, usage);
    expect(costUnitsToString(remaining.get('g1')!)).toBe('0.00222009'); // 0.01 - 3 x 0.00175997 - 0.0025
    expect(costUnitsToString(remaining.get('g2')!)).toBe('0.99472009'); // 1 - 3 x 0.00175997
    expect(uncoveredUnits).toBe(0n);
    // g1 alone: usage from its expires_at on is not even read (nothing could cover it).
    expect(show(await reader.creditUsage('acct_c', { grants: [g1] })).at(-1)).toBe('2026-11-10T10:29:59.999Z deepseek-r1 0.00175997 2026-11');

    // Scoped to gpt-4o only: deepseek-r1 usage is not read at all.
    const scoped = await reader.creditUsage('acct_c', { grants: [terms({ id: 'g3', models: ['gpt-4o'], expiresAt })] });
    expect(show(scoped)).toEqual(['2026-11-10T09:00:00.000Z gpt-4o 0.0025 2026-11']);
  });

  it('reads only late events (invoice_id IS NULL) of a month that has an invoice, and an invoice’s own claimed events with invoiceId', async () => {
    await ingestor.ingest(asMessages([ev('2026-10-05T08:10:00.000Z'), ev('2026-10-05T08:20:00.000Z'), ev('2026-11-02T01:00:00.000Z')]), 'http');
    await db.pool.query(
      `INSERT INTO invoices (id, account_id, period, period_start, period_end, status, total_exact_usd, total_minor)
       VALUES ('inv_oct', 'acct_c', '2026-10', '2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z', 'finalized', 0, 0)`,
    );
    await db.pool.query(`UPDATE usage_events SET invoice_id = 'inv_oct' WHERE occurred_at < '2026-11-01'`);
    await ingestor.ingest(asMessages([ev('2026-10-05T08:40:00.000Z')]), 'http'); // late, after the close

    const grants = [terms({ id: 'g1' })];
    expect(show(await reader.creditUsage('acct_c', { grants }))).toEqual([
      '2026-10-05T08:40:00.000Z deepseek-r1 0.00175997 2026-10',
      '2026-11-02T01:00:00.000Z deepseek-r1 0.00175997 2026-11',
    ]);
    expect(show(await reader.creditUsage('acct_c', { grants, invoiceId: 'inv_oct' }))).toEqual(['2026-10-05T08:00:00.000Z deepseek-r1 0.00351994 2026-10']);
    // With a grant starting inside that hour, the claimed events of the hour come one by one.
    const starting = [terms({ id: 'g2', effectiveAt: new Date('2026-10-05T08:15:00.000Z') })];
    expect(show(await reader.creditUsage('acct_c', { grants: starting, invoiceId: 'inv_oct' }))).toEqual(['2026-10-05T08:20:00.000Z deepseek-r1 0.00175997 2026-10']);
  });

  it('never counts an event a later invoice claimed: an October late event billed on November, October without an invoice', async () => {
    await ingestor.ingest(
      asMessages([
        ev('2026-10-20T08:10:00.000Z'),
        ev('2026-10-20T08:20:00.000Z'),
        ev('2026-10-21T09:00:00.000Z'),
        ev('2026-11-02T01:00:00.000Z'),
        ev('2026-12-01T03:00:00.000Z'),
      ]),
      'http',
    );
    // November's invoice claims its own event and the October event of 08:10 (a late event): October has no invoice row.
    await db.pool.query(
      `INSERT INTO invoices (id, account_id, period, period_start, period_end, status, total_exact_usd, total_minor)
       VALUES ('inv_nov', 'acct_c', '2026-11', '2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z', 'finalized', 0, 0)`,
    );
    await db.pool.query(
      `UPDATE usage_events SET invoice_id = 'inv_nov' WHERE occurred_at IN ('2026-10-20T08:10:00Z', '2026-10-21T09:00:00Z', '2026-11-02T01:00:00Z')`,
    );
    const grants = [terms({ id: 'g1' })];
    expect(show(await reader.creditUsage('acct_c', { grants }))).toEqual([
      '2026-10-20T08:00:00.000Z deepseek-r1 0.00175997 2026-10', // the hour's rollup less its claimed event
      '2026-12-01T03:00:00.000Z deepseek-r1 0.00175997 2026-12', // the 21st's hour is all claimed: no piece
    ]);
    // A grant starting inside the claimed hour: the hour comes event by event, the claimed one left out.
    const starting = [terms({ id: 'g2', effectiveAt: new Date('2026-10-20T08:05:00.000Z') })];
    expect(show(await reader.creditUsage('acct_c', { grants: starting }))).toEqual([
      '2026-10-20T08:20:00.000Z deepseek-r1 0.00175997 2026-10',
      '2026-12-01T03:00:00.000Z deepseek-r1 0.00175997 2026-12',
    ]);
    // The balance (same reader): 0.01 less the two uninvoiced events only.
    const { remaining } = allocateCredits([{ ...grants[0], availableUnits: 100_000_000_000_000_000_000n }], await reader.creditUsage('acct_c', { grants }));
    expect(costUnitsToString(remaining.get('g1')!)).toBe('0.00648006');
  });

  it('NOTIFYs tokenmeter_credit_usage with the chunk’s accounts that have a live grant, and stays silent otherwise', async () => {
    const listener = new Client({ connectionString: TEST_DATABASE_URL });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN tokenmeter_credit_usage');
    try {
      const now = new Date().toISOString();
      await ingestor.ingest(asMessages([ev(now), ev(now, { account_id: 'acct_d' })]), 'http');
      await db.pool.query(
        `INSERT INTO credit_grants (id, account_id, amount_usd, category, effective_at, idempotency_key, request_hash, status) VALUES
           ('g_live', 'acct_c', 10, 'paid', now() - interval '1 day', 'k1', 'h', 'active'),
           ('g_void', 'acct_d', 10, 'paid', now() - interval '1 day', 'k2', 'h', 'voided'),
           ('g_done', 'acct_e', 10, 'paid', now() - interval '2 day', 'k3', 'h', 'active')`,
      );
      await db.pool.query(`UPDATE credit_grants SET expires_at = now() - interval '1 day' WHERE id = 'g_done'`);
      await ingestor.ingest(asMessages([ev(now, { account_id: 'acct_e' }), ev(now, { account_id: 'acct_d' })]), 'http');
      await ingestor.ingest(asMessages([ev(now, { account_id: 'acct_e' }), ev(now), ev(now, { account_id: 'acct_d' })]), 'http');
      await listener.query('SELECT 1'); // notifications sent before this round trip have arrived
      expect(payloads).toEqual(['acct_c']);
    } finally {
      await listener.end();
    }
  });

  it('NOTIFYs tokenmeter_credit_usage when a reprice changes the costs of an account with a live grant', async () => {
    const now = new Date();
    await ingestor.ingest(asMessages([ev(now.toISOString()), ev(now.toISOString(), { account_id: 'acct_d' })]), 'http');
    await db.pool.query(
      `INSERT INTO credit_grants (id, account_id, amount_usd, category, effective_at, idempotency_key, request_hash, status)
       VALUES ('g_live', 'acct_c', 10, 'paid', now() - interval '1 day', 'k1', 'h', 'active')`,
    );
    const listener = new Client({ connectionString: TEST_DATABASE_URL });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN tokenmeter_credit_usage');
    try {
      const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      await new PriceBookRepository(db.pool).createPriceVersion({
        modelId: 'deepseek-r1', effectiveFrom: start, inputPerMTok: '0.2857', outputPerMTok: '1.14285', cacheReadPerMTok: '0.1143', cacheWritePerMTok: null,
      });
      const reprice = new RepriceService(new RepriceRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
      await reprice.repriceRange(new Transactor(db.pool), { from: start, to: new Date(now.getTime() + 3_600_000) }, { dryRun: false });
      await listener.query('SELECT 1');
      expect(payloads).toEqual(['acct_c']);
      const usage = await reader.creditUsage('acct_c', { grants: [terms({ id: 'g', effectiveAt: start })] });
      expect(show(usage).map((u) => u.split(' ')[2])).toEqual(['0.000879985']); // half price
    } finally {
      await listener.end();
    }
  });
});
