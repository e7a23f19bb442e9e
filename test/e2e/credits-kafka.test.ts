import pino from 'pino';
import { costUnitsToString } from '@tokenmeter/billing';
import { AccountsRepository } from '@tokenmeter/db';
import { CreditState } from '@tokenmeter/limits';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { aUsageEvent } from '../factories/usage-events';
import { createTopics, publishUsage, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';
import { ingestorOn } from '../helpers/ingest';
import { creditsServiceOn, TEST_ACTOR as actor } from '../helpers/limits';

jest.setTimeout(120_000);

describe('credits burned by usage published to the real broker, and the authorize credit state following it', () => {
  const db = useTestDatabase();
  const kafka = testKafka();
  let consumer: UsageConsumer | undefined;
  let state: CreditState | undefined;

  afterEach(async () => {
    await consumer?.stop().catch(() => undefined);
    await state?.stop();
  });

  it('allocates every stored event exactly once across redeliveries, and the in-memory pools equal the derivation from the database', async () => {
    const credits = creditsServiceOn(db);
    await db.pool.query(`INSERT INTO accounts (id, prepaid_only) VALUES ('acct_p', true), ('acct_q', false)`);
    const expiresAt = new Date('2026-11-10T10:30:00.000Z');
    const base = { category: 'promotional' as const, effectiveAt: new Date('2026-11-01T00:00:00Z'), priority: 0, models: [] };
    const promo = await credits.createGrant({ ...base, accountId: 'acct_p', amountUsd: '0.1', expiresAt, idempotencyKey: 'promo' }, actor);
    const paid = await credits.createGrant({ ...base, accountId: 'acct_p', category: 'paid', amountUsd: '1', expiresAt: null, idempotencyKey: 'paid' }, actor);
    await credits.createGrant({ ...base, accountId: 'acct_q', amountUsd: '5', expiresAt: null, idempotencyKey: 'q' }, actor);

    const accounts = new AccountsRepository(db.pool);
    state = new CreditState(
      {
        listPrepaidOnlyAccountIds: () => accounts.listPrepaidOnlyAccountIds(),
        isPrepaidOnly: async (id) => (await accounts.getAccount(id))?.prepaidOnly ?? false,
        poolsOf: (id, now) => credits.poolsForAuthorize(id, now),
      },
      { databaseUrl: TEST_DATABASE_URL },
    );
    await state.start();
    expect(state.isPrepaidOnly('acct_p')).toBe(true);
    expect(state.isPrepaidOnly('acct_q')).toBe(false);

    // 100 events of acct_p before expires_at (the last one ms before), 100 from it on (the first exactly at it), 60 of acct_q;
    // 10:00-11:00 is a boundary hour, read event by event. Each event costs 0.00175997.
    const before = Array.from({ length: 100 }, (_, i) => new Date(expiresAt.getTime() - 1 - i * 90_000));
    const after = Array.from({ length: 100 }, (_, i) => new Date(expiresAt.getTime() + i * 60_000));
    const events = [
      ...[...before, ...after].map((at) => aUsageEvent({ account_id: 'acct_p', occurred_at: at.toISOString() })),
      ...Array.from({ length: 60 }, (_, i) => aUsageEvent({ account_id: 'acct_q', occurred_at: new Date(Date.UTC(2026, 10, 12, i % 24)).toISOString() })),
    ];
    const topic = uniqueName('credits');
    await createTopics(kafka, [topic, `${topic}.dlq`], 3);
    const redelivered = events.filter((_, i) => i % 4 === 0);
    const messages = [...events, ...redelivered];
    await publishUsage(topic, messages);

    const usageNotificationsBefore = state.stats.usageNotifications;
    consumer = new UsageConsumer(
      kafka,
      ingestorOn(db),
      { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 50 },
      pino({ level: 'silent' }),
    );
    await consumer.start();
    await waitFor('every message committed', async () => {
      const { rows } = await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic]);
      return rows[0].n === messages.length;
    });

    // promo covers the 100 events before its expiry up to its 0.1; the paid grant the rest: 200 x 0.00175997 - 0.1.
    const p = await credits.balances('acct_p');
    const byId = new Map(p.grants.map((g) => [g.grant.id, g]));
    expect(byId.get(promo.grant.grant.id)).toMatchObject({ pendingUsd: '0.1', availableUsd: '0', state: 'expired' });
    expect(byId.get(paid.grant.grant.id)).toMatchObject({ pendingUsd: '0.251994', availableUsd: '0.748006', state: 'usable' });
    expect((await credits.balances('acct_q')).totals).toMatchObject({ pendingUsd: '0.1055982', availableUsd: '4.8944018' }); // 60 events

    // The listener heard the chunks and recomputed acct_p from the database: the same pools, exactly.
    await waitFor('the credit state caught up', async () => costUnitsToString(state!.coveringUnits('acct_p', 'deepseek-r1', new Date())) === '0.748006');
    expect(state.stats.usageNotifications).toBeGreaterThan(usageNotificationsBefore);
    expect(state.pools('acct_p').map((g) => [g.id, costUnitsToString(g.availableUnits)])).toEqual(
      (await credits.poolsForAuthorize('acct_p')).map((g) => [g.id, costUnitsToString(g.availableUnits)]),
    );
    expect(state.pools('acct_q')).toEqual([]); // not prepaid-only: not kept
  });
});
