import { AuditLogRepository, PriceBookRepository, PriceOverridesRepository, type Database } from '@tokenmeter/db';
import { openTestDatabase, resetDatabase } from '../helpers/tokenmeter-db';

/**
 * The CRUD repositories read through Prisma (Prisma.Decimal, BigInt) but must hand out the same
 * records the pg statements did: decimals as pg prints them, ids as strings. The ingest price
 * book snapshot still reads with pg, so the two readers must agree on the same rows.
 */
describe('Prisma-backed repositories keep the pg record shapes', () => {
  let db: Database;
  let priceBook: PriceBookRepository;
  let overrides: PriceOverridesRepository;
  let audit: AuditLogRepository;
  beforeAll(() => {
    db = openTestDatabase();
    priceBook = new PriceBookRepository(db.pool);
    overrides = new PriceOverridesRepository(db.pool);
    audit = new AuditLogRepository(db.pool);
  });
  afterAll(() => db.close());
  beforeEach(() => resetDatabase(db));

  it('prints decimals with the column scale, never in exponent form, and agrees with the pg snapshot', async () => {
    await priceBook.upsertModel({ id: 'tiny', displayName: null, provider: null, contextWindow: null, maxOutputTokens: null });
    const { version } = await priceBook.createPriceVersion({
      modelId: 'tiny',
      effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      inputPerMTok: '0.00000001',
      outputPerMTok: '1234567890.1234567891',
      cacheReadPerMTok: '0',
      cacheWritePerMTok: null,
    });
    expect(version).toMatchObject({ inputPerMTok: '0.0000000100', outputPerMTok: '1234567890.1234567891', cacheReadPerMTok: '0.0000000000', cacheWritePerMTok: null });
    expect(version!.id).toMatch(/^\d+$/);
    const override = await overrides.createPriceOverride({
      accountId: 'acct_a',
      modelId: 'tiny',
      kind: 'rate_card',
      discountPercent: null,
      inputPerMTok: '0.0000001',
      outputPerMTok: '2',
      cacheReadPerMTok: '0.1',
      cacheWritePerMTok: null,
      effectiveFrom: new Date('2026-11-01T00:00:00Z'),
      effectiveTo: null,
    });
    await overrides.createPriceOverride({ ...override, kind: 'discount', modelId: null, discountPercent: '0.0001', inputPerMTok: null, outputPerMTok: null, cacheReadPerMTok: null });
    const listed = await overrides.listPriceOverrides('acct_a');
    expect(listed.map((o) => o.discountPercent)).toEqual([null, '0.0001']);
    expect(listed[0]).toMatchObject({ inputPerMTok: '0.0000001000', outputPerMTok: '2.0000000000', cacheReadPerMTok: '0.1000000000' });

    const snapshot = await priceBook.loadSnapshot();
    expect(snapshot.overrides).toEqual(listed);
    expect(snapshot.versions).toEqual([version]);
    const [model] = await priceBook.listModelsWithVersions();
    expect(model.versions).toEqual([version]);
  });

  it('stores a null before/after as SQL NULL and lists audit ids as strings, newest first', async () => {
    await audit.append({ actorKeyId: null, action: 'x.create', targetType: 'x', targetId: 't1', before: null, after: { a: 1, at: new Date('2026-11-01T00:00:00Z') }, requestId: 'r1' });
    await audit.append({ actorKeyId: 'k', action: 'x.update', targetType: 'x', targetId: 't1', before: { a: 1 }, after: undefined, requestId: null });
    const { rows } = await db.pool.query('SELECT before IS NULL AS b, after IS NULL AS a FROM audit_log ORDER BY id');
    expect(rows).toEqual([{ b: true, a: false }, { b: false, a: true }]);
    const entries = await audit.listEntries({ limit: 10 });
    expect(entries.map((e) => [typeof e.id, e.action, e.before, e.after])).toEqual([
      ['string', 'x.update', { a: 1 }, null],
      ['string', 'x.create', null, { a: 1, at: '2026-11-01T00:00:00.000Z' }],
    ]);
    expect(await audit.listEntries({ limit: 10, beforeId: entries[0].id })).toEqual([entries[1]]);
  });
});
