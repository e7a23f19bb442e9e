import { ConflictError } from '@tokenmeter/billing';
import { UsageIngestor } from '@tokenmeter/ingest';
import { CreditsService, type NewCreditGrantInput } from '@tokenmeter/limits';
import { aUsageEvent, type GatewayEvent } from '../factories/usage-events';
import { useTestDatabase } from '../helpers/tokenmeter-db';
import { asMessages, ingestorOn } from '../helpers/ingest';
import { creditsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';

// Every default deepseek-r1 event costs exactly $0.00175997.

describe('credit grants, their append-only ledger and exact balances over ingested usage (real Postgres)', () => {
  const db = useTestDatabase();
  let ingestor: UsageIngestor;
  let credits: CreditsService;
  const ev = (occurredAt: string, over: Partial<GatewayEvent> = {}) => aUsageEvent({ account_id: 'acct_c', occurred_at: occurredAt, ...over });
  const grant = (over: Partial<NewCreditGrantInput> = {}): NewCreditGrantInput => ({
    accountId: 'acct_c',
    amountUsd: '0.01',
    category: 'promotional',
    effectiveAt: new Date('2026-11-01T00:00:00.000Z'),
    expiresAt: null,
    priority: 0,
    models: [],
    idempotencyKey: 'k1',
    ...over,
  });
  const ledger = async () =>
    (await db.pool.query<{ grant_id: string; kind: string; amount: string }>('SELECT grant_id, kind, amount_usd::text AS amount FROM credit_ledger_entries ORDER BY id')).rows;

  beforeEach(async () => {
    ingestor = ingestorOn(db);
    credits = creditsServiceOn(db);
    await db.pool.query(`INSERT INTO accounts (id) VALUES ('acct_c')`);
  });

  it('creates a grant with its ledger entry and audit entry; the same key and terms return it, other terms are a 409', async () => {
    const first = await credits.createGrant(grant({ amountUsd: '10.50', models: ['gpt-4o', 'deepseek-r1'] }), actor);
    expect(first.created).toBe(true);
    expect(first.grant).toMatchObject({ ledgerBalanceUsd: '10.5', pendingUsd: '0', availableUsd: '10.5', state: 'usable' });
    expect(first.grant.grant.models).toEqual(['deepseek-r1', 'gpt-4o']);
    // The same terms spelled differently: the same grant, nothing written.
    const again = await credits.createGrant(grant({ amountUsd: '10.5000', models: ['deepseek-r1', 'gpt-4o', 'gpt-4o'] }), actor);
    expect(again.created).toBe(false);
    expect(again.grant.grant.id).toBe(first.grant.grant.id);
    await expect(credits.createGrant(grant({ amountUsd: '11', models: ['gpt-4o', 'deepseek-r1'] }), actor)).rejects.toThrow(ConflictError);
    await expect(credits.createGrant(grant({ amountUsd: '10.5', models: ['gpt-4o', 'deepseek-r1'], priority: 1 }), actor)).rejects.toThrow(ConflictError);
    expect(await ledger()).toEqual([{ grant_id: first.grant.grant.id, kind: 'grant', amount: '10.5' }]);
    const audit = await db.pool.query(`SELECT action, target_id FROM audit_log ORDER BY id`);
    expect(audit.rows).toEqual([{ action: 'credit_grant.create', target_id: first.grant.grant.id }]);

    // Concurrent creations with one key: one grant, one ledger entry.
    const racing = await Promise.all([1, 2, 3].map(() => credits.createGrant(grant({ idempotencyKey: 'k_race' }), actor)));
    expect(racing.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(racing.map((r) => r.grant.grant.id)).size).toBe(1);
    expect((await ledger()).filter((e) => e.grant_id === racing[0].grant.grant.id)).toHaveLength(1);
  });

  it('burns uninvoiced usage exactly, event by event in a boundary hour: one ms before expires_at draws, expires_at does not', async () => {
    const expiresAt = new Date('2026-11-10T10:30:00.000Z');
    const promo = (await credits.createGrant(grant({ expiresAt, idempotencyKey: 'promo' }), actor)).grant.grant;
    const paid = (await credits.createGrant(grant({ category: 'paid', amountUsd: '1', idempotencyKey: 'paid', priority: 1 }), actor)).grant.grant;
    await ingestor.ingest(
      asMessages([ev('2026-11-10T09:00:00.000Z'), ev('2026-11-10T09:59:59.999Z'), ev('2026-11-10T10:29:59.999Z'), ev('2026-11-10T10:30:00.000Z')]),
      'kafka',
    );
    const b = await credits.balances('acct_c', new Date('2026-11-10T12:00:00.000Z'));
    const byId = new Map(b.grants.map((g) => [g.grant.id, g]));
    // promo (priority 0) covers the three events before 10:30: 3 x 0.00175997 = 0.00527991.
    expect(byId.get(promo.id)).toMatchObject({ ledgerBalanceUsd: '0.01', pendingUsd: '0.00527991', availableUsd: '0.00472009', state: 'expired' });
    // The event at expires_at falls to the paid grant.
    expect(byId.get(paid.id)).toMatchObject({ ledgerBalanceUsd: '1', pendingUsd: '0.00175997', availableUsd: '0.99824003', state: 'usable' });
    expect(b.totals).toEqual({ ledgerBalanceUsd: '1.01', pendingUsd: '0.00703988', availableUsd: '1.00296012', usableUsd: '0.99824003' });

    // Usage beyond every grant is billed as usual: the promotional grant is exhausted, the rest is uncovered.
    const small = (await credits.createGrant(grant({ amountUsd: '0.001', idempotencyKey: 'small', priority: -1, effectiveAt: new Date('2026-11-11T00:00:00Z') }), actor))
      .grant.grant;
    await ingestor.ingest(asMessages([ev('2026-11-11T05:00:00.000Z', { model: 'gpt-4o', usage: { input_tokens: 1000, output_tokens: 0 } })]), 'http');
    const after = new Map((await credits.balances('acct_c', new Date('2026-11-12T00:00:00Z'))).grants.map((g) => [g.grant.id, g]));
    expect(after.get(small.id)).toMatchObject({ pendingUsd: '0.001', availableUsd: '0' }); // drew 0.001 of 0.0025
    expect(after.get(paid.id)).toMatchObject({ pendingUsd: '0.00325997', availableUsd: '0.99674003' }); // + the other 0.0015
  });

  it('voids the available balance only, keeps what uninvoiced usage draws, refuses a second void, and the ledger refuses edits', async () => {
    const g = (await credits.createGrant(grant({ amountUsd: '0.01' }), actor)).grant.grant;
    await ingestor.ingest(asMessages([ev('2026-11-10T09:00:00.000Z'), ev('2026-11-10T09:10:00.000Z')]), 'http');
    const voided = await credits.voidGrant(g.id, actor);
    expect(voided).toMatchObject({ state: 'voided', ledgerBalanceUsd: '0.00351994', pendingUsd: '0.00351994', availableUsd: '0' });
    expect(voided.grant.voidedAt).toBeInstanceOf(Date);
    expect(await ledger()).toEqual([
      { grant_id: g.id, kind: 'grant', amount: '0.01' },
      { grant_id: g.id, kind: 'void', amount: '-0.00648006' },
    ]);
    await expect(credits.voidGrant(g.id, actor)).rejects.toThrow(ConflictError);
    // The usage it already paid for stays covered; new usage is not.
    await ingestor.ingest(asMessages([ev('2026-11-10T09:20:00.000Z')]), 'http');
    expect((await credits.getGrant(g.id)).pendingUsd).toBe('0.00351994');
    const audit = await db.pool.query(`SELECT action, after->>'voided_usd' AS voided FROM audit_log WHERE action = 'credit_grant.void'`);
    expect(audit.rows).toEqual([{ action: 'credit_grant.void', voided: '0.00648006' }]);

    await expect(db.pool.query(`UPDATE credit_ledger_entries SET amount_usd = 100`)).rejects.toThrow(/append-only \(UPDATE refused\)/);
    await expect(db.pool.query(`DELETE FROM credit_ledger_entries`)).rejects.toThrow(/append-only \(DELETE refused\)/);
    // The sums balance: grant + void = what is left on the ledger.
    const sum = await db.pool.query(`SELECT sum(amount_usd)::text AS s FROM credit_ledger_entries WHERE grant_id = $1`, [g.id]);
    expect(sum.rows[0].s).toBe('0.00351994');
  });

  it('pages the ledger newest first with a keyset cursor', async () => {
    for (const key of ['a', 'b', 'c']) await credits.createGrant(grant({ idempotencyKey: key }), actor);
    const page1 = await credits.listEntries('acct_c', { limit: 2 });
    const page2 = await credits.listEntries('acct_c', { limit: 2, beforeId: page1[1].id });
    expect([...page1, ...page2].map((e) => Number(e.id))).toEqual([3, 2, 1]);
    expect(page2).toHaveLength(1);
  });
});
