import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { logLevel, type Kafka } from 'kafkajs';
import ts from 'typescript';
import pino from 'pino';
import { PriceBookRepository, UsageEventsRepository } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor } from '@tokenmeter/ingest';
import { PublishError, createUsagePublisher, eventIdForRequest, type UsageEventInput, type UsagePublisher } from '@tokenmeter/gateway-client';
import { UsageConsumer } from '../../apps/ingestor/src/usage-consumer';
import { buildGatewayClient } from '../../libs/gateway-client/build';
import { aUsageEvent, defaultEventsCostUsd, openAiUsage, type GatewayEvent } from '../factories/usage-events';
import { createTopics, KAFKA_BROKERS, produceRaw, readTopic, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { storedEventCount, totals, useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '..', '..');
const silent = pino({ level: 'silent' });

/** A gateway's report of one request: no event_id, so the publisher mints it from request_id. */
function gatewayReport(requestId: string, overrides: Partial<GatewayEvent> = {}): UsageEventInput {
  const { event_id: _none, ...event } = aUsageEvent({ request_id: requestId, ...overrides });
  return event;
}

/** libs/gateway-client from a gateway's side, against the real broker and the real consumer. */
describe('@tokenmeter/gateway-client', () => {
  const db = useTestDatabase();
  let kafka: Kafka;
  const consumers: UsageConsumer[] = [];
  const publishers: UsagePublisher[] = [];

  const publisherFor = (topic: string, kafkaConfig = {}) => {
    const publisher = createUsagePublisher({ brokers: KAFKA_BROKERS, topic, clientId: 'gateway-e2e', kafkaConfig: { logLevel: logLevel.NOTHING, ...kafkaConfig } });
    publishers.push(publisher);
    return publisher;
  };
  const startConsumer = async (topic: string) => {
    const ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)));
    const consumer = new UsageConsumer(kafka, ingestor, { topic, dlqTopic: `${topic}.dlq`, groupId: uniqueName('group'), chunkSize: 100 }, silent);
    consumers.push(consumer);
    await consumer.start();
  };
  const committed = async (topic: string, messages: number) =>
    waitFor(`${messages} messages committed`, async () => {
      const { rows } = await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic]);
      return rows[0].n === messages;
    });
  const topicSize = async (topic: string) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
    } finally {
      await admin.disconnect();
    }
  };

  beforeAll(() => {
    kafka = testKafka();
  });
  afterEach(async () => {
    await Promise.all(publishers.splice(0).map((p) => p.close().catch(() => undefined)));
    await Promise.all(consumers.splice(0).map((c) => c.stop().catch(() => undefined)));
  });

  it('publishes keyed by account; a gateway retrying the same request ids is stored once', async () => {
    const topic = uniqueName('gw.usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 3);
    const publisher = publisherFor(topic);
    const run = uniqueName('req');
    const reports = Array.from({ length: 40 }, (_, i) => gatewayReport(`${run}-${i}`, { account_id: `acct_gw_${i % 4}` }));

    const results = await publisher.publishMany(reports);
    expect(results).toEqual(reports.map((r) => ({ status: 'accepted', eventId: eventIdForRequest(r.request_id!) })));
    // The gateway did not see those acknowledgements and reports again: one by one, and as a batch.
    expect(await publisher.publish(reports[7])).toEqual(results[7]);
    expect(await Promise.all(reports.slice(0, 3).map((r) => publisher.publish(r)))).toEqual(results.slice(0, 3));
    expect(await publisher.publishMany(reports.slice(10, 20))).toEqual(results.slice(10, 20));

    const sent = 40 + 1 + 3 + 10;
    await startConsumer(topic);
    await committed(topic, sent);
    expect(await storedEventCount(db)).toBe(40);
    const stored = await db.pool.query('SELECT event_id, request_id FROM usage_events ORDER BY request_id');
    expect(stored.rows).toEqual(
      reports.map((r) => ({ event_id: eventIdForRequest(r.request_id!), request_id: r.request_id })).sort((a, b) => (a.request_id! < b.request_id! ? -1 : 1)),
    );
    // Retries are duplicates (same bytes), never conflicts or rejections.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM event_conflicts')).rows[0].n).toBe(0);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM rejected_events')).rows[0].n).toBe(0);
    expect((await totals(db)).raw).toMatchObject({ requests: '40', cost_usd: defaultEventsCostUsd(40) });

    // Keyed by account_id, so each account's events (retries included) sit on one partition.
    const messages = await readTopic(kafka, topic, sent);
    expect(messages).toHaveLength(sent);
    const partitionsOf = new Map<string, Set<number>>();
    for (const m of messages) {
      expect(m.key).toBe(JSON.parse(m.value).account_id);
      partitionsOf.set(m.key!, (partitionsOf.get(m.key!) ?? new Set()).add(m.partition));
    }
    expect([...partitionsOf.values()].map((p) => p.size)).toEqual([1, 1, 1, 1]);
  });

  it('refuses what the ingestor refuses, with the same code and reason, and sends none of it', async () => {
    const topic = uniqueName('gw.usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    const bad = [
      { ...aUsageEvent(), event_id: 'evt with spaces' },
      { ...aUsageEvent({ event_id: 'evt_gw_unknown_field' }), cost_usd: '0.01' } as UsageEventInput,
      aUsageEvent({ event_id: 'evt_gw_reasoning', usage: openAiUsage(100, 0, 10, 11) }),
      aUsageEvent({ event_id: 'evt_gw_negative', usage: { input_tokens: -1, output_tokens: 1 } }),
      aUsageEvent({ event_id: 'evt_gw_metadata', metadata: { prompt: 'lorem ipsum '.repeat(400) } }),
      aUsageEvent({ event_id: 'evt_gw_future', occurred_at: new Date(Date.now() + 3_600_000).toISOString() }),
      gatewayReport(''), // neither an event_id nor a request id to mint one from
    ];
    const results = await publisherFor(topic).publishMany(bad);
    expect(results.map((r) => r.status)).toEqual(bad.map(() => 'rejected'));
    expect(await topicSize(topic)).toBe(0);

    // A gateway without the library sends the same events as they are: the ingestor's verdicts.
    await produceRaw(kafka, topic, bad.map((e) => ({ key: 'acct_test', value: JSON.stringify(e) })));
    await startConsumer(topic);
    await committed(topic, bad.length);
    const rejected = await db.pool.query('SELECT raw_payload, reason_code AS code, reason FROM rejected_events');
    const verdict = new Map(rejected.rows.map((r) => [r.raw_payload, r]));
    bad.forEach((event, i) => {
      const ingestor = verdict.get(JSON.stringify(event));
      const publisher = results[i];
      if (!ingestor || publisher.status !== 'rejected') throw new Error(`no verdict for ${JSON.stringify(event).slice(0, 80)}`);
      expect(publisher.code).toBe(ingestor.code);
      // The future check names the receive time, which is each side's own clock.
      if (publisher.code === 'too_far_in_future') expect(publisher.reason.replace(/\d/g, '#').slice(0, 40)).toBe(ingestor.reason.replace(/\d/g, '#').slice(0, 40));
      else expect(publisher.reason).toBe(ingestor.reason);
    });
    expect(new Set(results.map((r) => r.status === 'rejected' && r.code))).toEqual(new Set(['schema', 'invariant', 'metadata_too_large', 'too_far_in_future']));
  });

  it('a broker that does not take the events: a PublishError with the unsent ones, which stored once when published again', async () => {
    const topic = uniqueName('gw.usage');
    const publisher = publisherFor(topic, { retry: { retries: 1, initialRetryTime: 100 } });
    const run = uniqueName('req');
    const reports = [gatewayReport(`${run}-a`), gatewayReport(`${run}-b`), { ...aUsageEvent(), event_id: 'bad id' }];

    // The topic does not exist yet (the publisher never creates one): nothing can be acknowledged.
    const error = await publisher.publishMany(reports).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    const failure = error as PublishError;
    expect(failure.results.map((r) => r.status)).toEqual(['unsent', 'unsent', 'rejected']);
    expect(failure.unsent.map((e) => e.event_id)).toEqual([eventIdForRequest(`${run}-a`), eventIdForRequest(`${run}-b`)]);

    await createTopics(kafka, [topic, `${topic}.dlq`], 2);
    // The same publisher (a fresh producer behind it), and the unsent events twice: stored once each.
    expect((await publisher.publishMany([...failure.unsent, ...failure.unsent])).map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    await startConsumer(topic);
    await committed(topic, 4);
    expect((await db.pool.query('SELECT event_id FROM usage_events ORDER BY event_id')).rows.map((r) => r.event_id)).toEqual(
      failure.unsent.map((e) => e.event_id).sort(),
    );
  });

  it('works as the published package: packed, installed next to only kafkajs and zod, typed and publishing', async () => {
    const topic = uniqueName('gw.usage');
    await createTopics(kafka, [topic, `${topic}.dlq`], 1);
    const dir = mkdtempSync(path.join(tmpdir(), 'gateway-client-'));
    try {
      // The package's prepack step (the build), then what package.json's `files` names, packed.
      buildGatewayClient();
      const packed = JSON.parse(
        execFileSync('npm', ['pack', '--silent', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: path.join(ROOT, 'libs/gateway-client'), encoding: 'utf8' }),
      );
      const installed = path.join(dir, 'node_modules', '@tokenmeter', 'gateway-client');
      mkdirSync(installed, { recursive: true });
      execFileSync('tar', ['-xzf', path.join(dir, packed[0].filename), '-C', installed, '--strip-components=1']);
      // The only packages there: the declared dependencies (and Node's types, for the TypeScript check).
      for (const dependency of ['kafkajs', 'zod', '@types/node']) {
        mkdirSync(path.dirname(path.join(dir, 'node_modules', dependency)), { recursive: true });
        symlinkSync(path.join(ROOT, 'node_modules', dependency), path.join(dir, 'node_modules', dependency));
      }

      // A TypeScript gateway compiles against the package's own declarations.
      const gateway = path.join(dir, 'gateway.ts');
      writeFileSync(
        gateway,
        `import { createUsagePublisher, type PublishResult, type UsageEventInput } from '@tokenmeter/gateway-client';
interface CompletionUsage { prompt_tokens: number; completion_tokens: number } // as a provider SDK declares it
const usage: CompletionUsage = { prompt_tokens: 10, completion_tokens: 2 };
const event: UsageEventInput = { occurred_at: new Date(), account_id: 'acct_pkg', model: 'gpt-4o', request_id: 'req_pkg', usage };
export const results: Promise<PublishResult[]> = createUsagePublisher({ brokers: ['127.0.0.1:9092'] }).publishMany([event]);
`,
      );
      const program = ts.createProgram([gateway], {
        strict: true,
        noEmit: true,
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        target: ts.ScriptTarget.ES2022,
        types: ['node'],
        typeRoots: [path.join(dir, 'node_modules', '@types')],
      });
      expect(ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
      expect(program.getSourceFiles().some((f) => f.fileName.startsWith(path.join(installed, 'dist')))).toBe(true);

      const script = `
const { createUsagePublisher, eventIdForRequest } = require('@tokenmeter/gateway-client');
const publisher = createUsagePublisher({ brokers: ${JSON.stringify(KAFKA_BROKERS)}, topic: ${JSON.stringify(topic)}, kafkaConfig: { logLevel: 0 } });
const event = { occurred_at: new Date().toISOString(), account_id: 'acct_pkg', model: 'gpt-4o', request_id: 'req_pkg', usage: { prompt_tokens: 10, completion_tokens: 2 } };
publisher.publishMany([event, { ...event, account_id: 'not an id' }])
  .then(async (results) => { await publisher.close(); console.log(JSON.stringify({ results, minted: eventIdForRequest('req_pkg'), resolved: require.resolve('@tokenmeter/gateway-client') })); })
  .catch((error) => { console.error(error); process.exit(1); });
`;
      // NODE_PATH unset and the directory outside the repository: nothing but dir/node_modules resolves.
      const { NODE_PATH: _nodePath, ...env } = process.env;
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: dir, env, encoding: 'utf8' }));
      expect(out.resolved).toBe(path.join(installed, 'dist', 'gateway-client', 'src', 'index.js'));
      expect(out.results).toEqual([
        { status: 'accepted', eventId: out.minted },
        { status: 'rejected', eventId: out.minted, code: 'schema', reason: 'account_id must be 1-128 characters from [A-Za-z0-9._:-]' },
      ]);
      const [message] = await readTopic(kafka, topic, 1);
      expect(message.key).toBe('acct_pkg');
      expect(JSON.parse(message.value)).toMatchObject({ event_id: out.minted, request_id: 'req_pkg' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Two TypeScript compilations (the build, the gateway's check): ~12 s of CPU, minutes on a crowded box.
  }, 300_000);
});
