import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Decimal } from '@tokenmeter/billing';
import type { Database } from '@tokenmeter/db';
import { Partitioners, type Kafka } from 'kafkajs';
import { client, insertApiKey, qs, startApi } from '../helpers/api-app';
import { createTopics, readTopic, testKafka, uniqueName, waitFor } from '../helpers/kafka';
import { freePort, startApp, stopApp, type AppProcess } from '../helpers/processes';
import { openTestDatabase, resetDatabase, seedPriceBook, TEST_DATABASE_URL } from '../helpers/tokenmeter-db';

/**
 * The LiteLLM integration end to end: the real `litellm` package (pinned in
 * integrations/litellm/requirements.txt, installed by scripts/ensure-litellm.sh) makes calls with
 * `mock_response` (no provider, no network), the Tokenmeter callback publishes them to a real
 * broker, the ingestor process stores and prices them, and the API shows each one exactly once
 * with the price it must have. integrations/litellm/tests/drive_calls.py makes the calls.
 */
jest.setTimeout(300_000);

const ROOT = path.resolve(__dirname, '../..');
const INTEGRATION = path.join(ROOT, 'integrations/litellm');
const MODEL_MAP = { 'deepseek/deepseek-reasoner': 'deepseek-r1', 'anthropic/claude-sonnet-4-20250514': 'claude-sonnet-4' };

/** UUIDv5 (RFC 9562), written out here as the independent check of docs/event-contract.md's rule. */
function uuidV5(namespace: string, name: string): string {
  const hash = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
const EVENT_ID_NAMESPACE = '7943717a-0c42-52c4-ab95-fcc2d6d76295';

interface DriverOutput {
  calls: Record<'plain' | 'cached_reasoning' | 'cache_write' | 'stream' | 'no_account', string>;
  usage: Record<string, { prompt_tokens: number; completion_tokens: number }>;
  delivered: number;
  failed: number;
  left: number;
}

function run(python: string, args: string[], env: Record<string, string>, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('LiteLLM integration: litellm calls -> callback -> Kafka -> ingestor -> API', () => {
  let python: string;
  let db: Database;
  let kafka: Kafka;
  let app: NestExpressApplication;
  let api: ReturnType<typeof client>;
  let admin: string;
  let topic: string;
  let ingestor: AppProcess;
  let out: DriverOutput;
  let startedAt: number;
  let finishedAt: number;

  const receipt = async (callId: string) => {
    const res = await api.get(`/admin/events${qs({ request_id: callId })}`, admin);
    expect(res.status).toBe(200);
    return res.body.data as Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  beforeAll(async () => {
    python = execFileSync('bash', ['scripts/ensure-litellm.sh'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    db = openTestDatabase();
    kafka = testKafka();
    await resetDatabase(db);
    await seedPriceBook(db);
    ({ app } = await startApi());
    api = client(await app.getUrl());
    admin = await insertApiKey(db, 'admin');
    topic = uniqueName('usage.litellm');
    await createTopics(kafka, [topic, `${topic}.dlq`], 3);
    ingestor = startApp('apps/ingestor/src/main.ts', {
      DATABASE_URL: TEST_DATABASE_URL,
      KAFKA_USAGE_TOPIC: topic,
      KAFKA_GROUP_ID: uniqueName('group'),
      INGESTOR_METRICS_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    });

    startedAt = Date.now();
    const result = await run(python, ['integrations/litellm/tests/drive_calls.py'], {
      LITELLM_LOCAL_MODEL_COST_MAP: 'True',
      PYTHONPATH: INTEGRATION,
      TOKENMETER_KAFKA_BROKERS: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'),
      TOKENMETER_KAFKA_TOPIC: topic,
      TOKENMETER_ACCOUNT_FROM: 'end_user,team',
      TOKENMETER_API_KEY_FROM: 'alias,hash',
      TOKENMETER_MODEL_MAP: JSON.stringify(MODEL_MAP),
    });
    finishedAt = Date.now();
    if (result.code !== 0) throw new Error(`drive_calls.py exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
    out = JSON.parse(result.stdout) as DriverOutput;
    // Six messages: five calls and the second report of one of them; all acknowledged.
    expect({ delivered: out.delivered, failed: out.failed, left: out.left }).toEqual({ delivered: 6, failed: 0, left: 0 });

    // Done when the ingestor has committed all six (stored, deduped or dead-lettered): the
    // tests below then see the final state, and each says what it found.
    await waitFor('every message committed', async () => {
      const { rows } = await db.pool.query('SELECT coalesce(sum(next_offset), 0)::int AS n FROM ingest_progress WHERE topic = $1', [topic]);
      return rows[0].n === 6;
    });
  });

  afterAll(async () => {
    if (ingestor) await stopApp(ingestor);
    await app?.close();
    await db?.close();
  });

  it('a plain call: the call id as request_id, the virtual key alias, the end user as account, priced at deepseek-r1 rates', async () => {
    const [event, ...more] = await receipt(out.calls.plain);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      event_id: uuidV5(EVENT_ID_NAMESPACE, out.calls.plain),
      account_id: 'acct_litellm_a',
      api_key_id: 'key-prod.1',
      model: 'deepseek-r1',
      request_id: out.calls.plain,
      source: 'kafka',
      usage_format: 'openai',
      usage_raw: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
      tokens: { input_tokens: 10, output_tokens: 20, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0 },
      metadata: { gateway: 'litellm', litellm_model: 'deepseek/deepseek-reasoner' },
      costs: {
        input_cost_usd: '0.000005714', // 10 x 0.5714 / 1e6
        output_cost_usd: '0.000045714', // 20 x 2.2857 / 1e6
        cache_read_cost_usd: '0',
        cache_write_cost_usd: '0',
        cost_usd: '0.000051428',
      },
    });
    // occurred_at is LiteLLM's end_time in UTC: inside the run, to the millisecond.
    expect(event.occurred_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(event.occurred_at)).toBeGreaterThanOrEqual(startedAt);
    expect(Date.parse(event.occurred_at)).toBeLessThanOrEqual(finishedAt);
  });

  it('cached and reasoning tokens (OpenAI shape): cache reads are charged once, at the cache-read rate', async () => {
    const [event, ...more] = await receipt(out.calls.cached_reasoning);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      event_id: uuidV5(EVENT_ID_NAMESPACE, out.calls.cached_reasoning),
      account_id: 'acct_litellm_a', // the SDK's user= parameter
      api_key_id: 'hash-of-key-b', // no alias: the key hash
      model: 'deepseek-r1',
      usage_format: 'openai',
      usage_raw: {
        prompt_tokens: 2006,
        completion_tokens: 300,
        total_tokens: 2306,
        prompt_tokens_details: { cached_tokens: 1920 },
        completion_tokens_details: { reasoning_tokens: 128 },
      },
      tokens: { input_tokens: 86, output_tokens: 300, cache_read_tokens: 1920, cache_write_tokens: 0, reasoning_tokens: 128 },
      costs: {
        input_cost_usd: '0.0000491404', // (2006 - 1920) x 0.5714 / 1e6
        output_cost_usd: '0.00068571', // 300 x 2.2857 / 1e6 (reasoning included)
        cache_read_cost_usd: '0.000438912', // 1920 x 0.2286 / 1e6
        cache_write_cost_usd: '0',
        cost_usd: '0.0011737624',
      },
    });
  });

  it('reported twice by LiteLLM, the same call is stored once: a duplicate, not a conflict', async () => {
    const eventId = uuidV5(EVENT_ID_NAMESPACE, out.calls.cached_reasoning);
    expect(await receipt(out.calls.cached_reasoning)).toHaveLength(1);
    // Both reports did reach the broker, byte for byte the same.
    const all = await readTopic(kafka, topic, 6);
    // Every keyed message is on the partition Kafka's default partitioner (murmur2, as kafkajs and
    // @tokenmeter/gateway-client use) gives its key, so both publishers keep an account together.
    const partitionOf = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    const keyed = all.filter((m) => m.key !== null);
    expect(new Set(keyed.map((m) => m.key)).size).toBeGreaterThanOrEqual(2);
    for (const m of keyed) {
      const expected = partitionOf({ topic, partitionMetadata, message: { key: m.key, value: m.value } });
      expect({ key: m.key, partition: m.partition }).toEqual({ key: m.key, partition: expected });
    }
    const messages = all.filter((m) => JSON.parse(m.value).request_id === out.calls.cached_reasoning);
    expect(messages).toHaveLength(2);
    expect(messages[1].value).toBe(messages[0].value);
    expect(messages[0].key).toBe('acct_litellm_a');
    const conflicts = await api.get(`/admin/event-conflicts${qs({ event_id: eventId })}`, admin);
    expect(conflicts.body.data).toEqual([]);
    const summary = await api.get(`/admin/events${qs({ account_id: 'acct_litellm_a' })}`, admin);
    expect(summary.body.data.map((e: { request_id: string }) => e.request_id).sort()).toEqual(
      [out.calls.plain, out.calls.cached_reasoning, out.calls.stream].sort(),
    );
  });

  it('an async call with Anthropic cache writes: canonical buckets, cache writes at their own rate, the team as account', async () => {
    const [event, ...more] = await receipt(out.calls.cache_write);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      account_id: 'acct_litellm_team',
      api_key_id: 'hash-of-key-c',
      model: 'claude-sonnet-4',
      usage_format: 'canonical',
      // LiteLLM's prompt_tokens (3000) includes the 1000 cache reads and 500 cache writes.
      tokens: { input_tokens: 1500, output_tokens: 300, cache_read_tokens: 1000, cache_write_tokens: 500, reasoning_tokens: 0 },
      costs: {
        input_cost_usd: '0.0045', // 1500 x 3.00 / 1e6
        output_cost_usd: '0.0045', // 300 x 15.00 / 1e6
        cache_read_cost_usd: '0.0003', // 1000 x 0.30 / 1e6
        cache_write_cost_usd: '0.001875', // 500 x 3.75 / 1e6
        cost_usd: '0.011175',
      },
    });
  });

  it('a streamed call is reported once, with the usage LiteLLM counted for the stream', async () => {
    const [event, ...more] = await receipt(out.calls.stream);
    expect(more).toEqual([]);
    const { prompt_tokens: prompt, completion_tokens: completion } = out.usage.stream;
    expect(prompt).toBeGreaterThan(0);
    expect(event.tokens).toMatchObject({ input_tokens: prompt, output_tokens: completion });
    const cost = new Decimal(prompt).times('0.5714').plus(new Decimal(completion).times('2.2857')).div(1_000_000);
    expect(new Decimal(event.costs.cost_usd).equals(cost)).toBe(true);
  });

  it("the mapping rules' Python unit checks pass (tests/test_event.py)", async () => {
    const result = await run(python, ['-m', 'unittest', 'discover', '-s', 'tests'], { PYTHONPATH: INTEGRATION }, INTEGRATION);
    if (result.code !== 0) throw new Error(`python -m unittest failed:\n${result.stderr}`);
    expect(result.stderr).toMatch(/^Ran \d+ tests/m);
    expect(result.stderr).toMatch(/^OK$/m);
  });

  it('a call that maps to no account is dead-lettered with a reason naming account_id, not lost', async () => {
    const eventId = uuidV5(EVENT_ID_NAMESPACE, out.calls.no_account);
    expect(await receipt(out.calls.no_account)).toEqual([]);
    const rejected = await api.get(`/admin/rejected-events${qs({ event_id: eventId })}`, admin);
    expect(rejected.body.data).toHaveLength(1);
    expect(rejected.body.data[0]).toMatchObject({ reason_code: 'schema', source: 'kafka', message_key: null });
    expect(rejected.body.data[0].reason).toMatch(/account_id/);
    expect(JSON.parse(rejected.body.data[0].raw_payload)).toMatchObject({ request_id: out.calls.no_account, model: 'deepseek-r1' });
  });
});
