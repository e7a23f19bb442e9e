import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import pino from 'pino';
import { DATABASE, PriceBookRepository, READ_DATABASE, UsageEventsRepository, type Database } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { aUsageEvent } from '../factories/usage-events';
import { client, insertApiKey, qs, startApi } from '../helpers/api-app';
import { createTopics, publishUsage, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { lockReplicaForTest, pauseReplay, resumeReplay, startReadReplica, waitForReplay } from '../helpers/replica';
import { openTestDatabase, resetDatabase, seedPriceBook } from '../helpers/tokenmeter-db';

jest.setTimeout(180_000);

/** Account A: events sent over HTTP; account B: events from Kafka, through a real consumer. */
const A = 'acct_replica_a';
const B = 'acct_replica_b';
const HOUR_MS = 3_600_000;

const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('dashboards and audits read from a streaming replica (DATABASE_READ_URL)', () => {
  let lock: { release(): Promise<void> } | undefined;
  let replicaService: Awaited<ReturnType<typeof startReadReplica>> | undefined;
  let db: Database;
  /** A connection of the test's own to the replica: pauses and resumes replay, looks at what it has. */
  let replica: Client;
  let kafka: Kafka;
  let topic: string;
  let consumer: UsageConsumer | undefined;
  let app: NestExpressApplication | undefined;
  let api: ReturnType<typeof client>;
  let base: string;
  let keyA: string;
  let keyB: string;
  let admin: string;
  // Whole hours around now: both accounts' events fall inside.
  const now = Date.now();
  const FROM = iso(Math.floor(now / HOUR_MS) * HOUR_MS - HOUR_MS);
  const TO = iso(Math.floor(now / HOUR_MS) * HOUR_MS + 2 * HOUR_MS);

  beforeAll(async () => {
    lock = await lockReplicaForTest();
    replicaService = await startReadReplica();
    const readUrl = replicaService.url;
    db = openTestDatabase();
    replica = new Client({ connectionString: readUrl, application_name: 'tokenmeter-replica-test' });
    await replica.connect();
    // A run killed mid-test can leave replay paused; the lock says no other test is pausing it now.
    await resumeReplay(replica);

    await resetDatabase(db);
    await seedPriceBook(db);
    keyA = await insertApiKey(db, 'account', A);
    keyB = await insertApiKey(db, 'account', B);
    admin = await insertApiKey(db, 'admin');

    kafka = testKafka();
    topic = uniqueName('usage.replica');
    await createTopics(kafka, [topic, `${topic}.dlq`], 1);
    const ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
    consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 100 }, pino({ level: 'silent' }));
    await consumer.start();

    const started = await startApi('warn', { KAFKA_USAGE_TOPIC: topic, DATABASE_READ_URL: readUrl });
    app = started.app;
    base = started.base;
    api = client(base);
    await waitForReplay(db.pool, replica);
  });

  afterAll(async () => {
    await consumer?.stop().catch(() => undefined);
    await app?.close();
    if (replica) {
      await resumeReplay(replica).catch(() => undefined);
      await replica.end();
    }
    await db?.close();
    await replicaService?.stop();
    await lock?.release();
  });

  const summaryOf = async (key: string) => {
    const res = await api.get(`/v1/usage/summary${qs({ from: FROM, to: TO })}`, key);
    expect(res.status).toBe(200);
    const at = res.body.complete_up_to as string | null;
    return { completeUpTo: at === null ? null : Date.parse(at), requests: res.body.totals.requests as number };
  };

  /** The event ids each read route shows for account A: receipts list, admin list, export, summary. */
  const whatTheReadRoutesShow = async () => {
    const receipts = await api.get(`/v1/usage/events${qs({ from: FROM, to: TO, limit: 100 })}`, keyA);
    const adminList = await api.get(`/admin/events${qs({ account_id: A, limit: 100 })}`, admin);
    const exported = await fetch(`${base}/admin/events/export${qs({ account_id: A, format: 'ndjson' })}`, { headers: { authorization: `Bearer ${admin}` } });
    const accounts = await api.get(`/admin/usage/accounts${qs({ from: FROM, to: TO })}`, admin);
    const ids = (rows: { event_id: string }[]) => rows.map((r) => r.event_id).sort();
    return {
      receipts: ids(receipts.body.data),
      adminList: ids(adminList.body.data),
      exported: ids((await exported.text()).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))),
      summaryRequests: (await summaryOf(keyA)).requests,
      accountTotals: accounts.body.data.find((a: { account_id: string }) => a.account_id === A)?.requests ?? 0,
    };
  };

  it('serves reads from the standby and writes to the primary: an event shows only once the replica has replayed it', async () => {
    const inRecovery = async (database: Database) => (await database.pool.query('SELECT pg_is_in_recovery() AS r')).rows[0].r;
    expect(await inRecovery(app!.get<Database>(READ_DATABASE))).toBe(true);
    expect(await inRecovery(app!.get<Database>(DATABASE))).toBe(false);

    const first = aUsageEvent({ account_id: A, occurred_at: iso(now - 50 * 60_000) });
    expect((await api.ingest([first])).results[0].status).toBe('accepted');
    await waitForReplay(db.pool, replica);
    expect((await api.get(`/v1/usage/events/${first.event_id}`, keyA)).status).toBe(200);

    const second = aUsageEvent({ account_id: A, occurred_at: iso(now - 40 * 60_000) });
    await pauseReplay(replica);
    try {
      // Written through the API (the primary) and committed there...
      expect((await api.ingest([second])).results[0].status).toBe('accepted');
      expect((await db.pool.query('SELECT 1 FROM usage_events WHERE event_id = $1', [second.event_id])).rowCount).toBe(1);
      // ...but invisible to every read route while the replica has not replayed it: they read the replica.
      expect((await api.get(`/v1/usage/events/${second.event_id}`, keyA)).status).toBe(404);
      expect(await whatTheReadRoutesShow()).toEqual({
        receipts: [first.event_id],
        adminList: [first.event_id],
        exported: [first.event_id],
        summaryRequests: 1,
        accountTotals: 1,
      });
    } finally {
      await resumeReplay(replica);
    }

    await waitForReplay(db.pool, replica);
    expect((await api.get(`/v1/usage/events/${second.event_id}`, keyA)).status).toBe(200);
    const both = [first.event_id, second.event_id].sort();
    expect(await whatTheReadRoutesShow()).toEqual({ receipts: both, adminList: both, exported: both, summaryRequests: 2, accountTotals: 2 });
  });

  it('complete_up_to never claims what the replica has not replayed, and the totals agree with it', async () => {
    const ingestedOnPrimary = async () =>
      (await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic])).rows[0].n as number;

    // Five events from half an hour ago, ingested from Kafka and replayed: caught up, so
    // complete_up_to reaches the moment the offsets were read, after the publish.
    const early = Array.from({ length: 5 }, (_, i) => aUsageEvent({ account_id: B, occurred_at: iso(now - 30 * 60_000 + i * 1000) }));
    await publishUsage(topic, early);
    const publishedEarly = Date.now();
    await waitFor('the early events ingested on the primary', async () => (await ingestedOnPrimary()) === 5);
    await waitForReplay(db.pool, replica);
    await waitFor('complete_up_to past the first publish', async () => {
      const s = await summaryOf(keyB);
      return s.requests === 5 && s.completeUpTo !== null && s.completeUpTo >= publishedEarly;
    }, 30_000, 250);

    await pauseReplay(replica);
    const newestEarly = Date.parse(early[4].occurred_at);
    // Five more, occurring 2 s after they are published (within the accepted clock skew): any
    // caught-up answer computed before the publish is earlier than all of them, so an answer at
    // or past lateFrom can only come from progress the replica does not have.
    const lateFrom = Date.now() + 2000;
    try {
      const late = Array.from({ length: 5 }, (_, i) => aUsageEvent({ account_id: B, occurred_at: iso(lateFrom + i) }));
      await publishUsage(topic, late);
      await waitFor('the late events ingested on the primary', async () => (await ingestedOnPrimary()) === 10);

      // The primary is caught up (10 of 10); the replica's ingest_progress still says 5 of 10, so
      // the partition is behind and complete_up_to falls back to the newest occurred_at the replica
      // has ingested. Watched for over two lifetimes of the freshness cache (5 s): every answer,
      // cached or fresh, stays before the late events, and the totals leave them out.
      const answers: Awaited<ReturnType<typeof summaryOf>>[] = [];
      const until = Date.now() + 12_000;
      while (Date.now() < until) {
        answers.push(await summaryOf(keyB));
        await sleep(250);
      }
      expect(answers.filter((s) => s.requests !== 5 || s.completeUpTo === null || s.completeUpTo >= lateFrom)).toEqual([]);
      expect(answers[answers.length - 1]).toEqual({ completeUpTo: newestEarly, requests: 5 });
      const progressOn = async (q: Pick<Client, 'query'>) =>
        (await q.query('SELECT next_offset::int AS n FROM ingest_progress WHERE topic = $1', [topic])).rows[0].n;
      expect({ primary: await progressOn(db.pool), replica: await progressOn(replica) }).toEqual({ primary: 10, replica: 5 });
    } finally {
      await resumeReplay(replica);
    }

    // Replayed: the late events count, and complete_up_to is the present again, past all of them.
    await waitFor('complete_up_to past the late events once replayed', async () => {
      const s = await summaryOf(keyB);
      return s.requests === 10 && s.completeUpTo !== null && s.completeUpTo > lateFrom + 4;
    }, 30_000, 250);
  });
});
