/**
 * `npm run demo [-- --events 30000 --days 28]`: publishes a few weeks of realistic gateway traffic
 * for five named accounts to the configured usage topic (KAFKA_BROKERS, KAFKA_USAGE_TOPIC), so a
 * running Tokenmeter (`npm start`) ingests it and its dashboards have something to show.
 *
 * 1. creates the accounts, a deepseek-r1 price change in the middle of the range and, once, an
 *    admin key and an account key to sign in with: all through the services the admin API and the
 *    CLI use (so each leaves its audit entry), never raw SQL;
 * 2. publishes the traffic of scripts/demo-traffic.ts (redeliveries and one conflicting event id
 *    included) to the real topic through libs/gateway-client, as the gateway would, then the
 *    malformed messages as raw bytes (the library refuses to send them; a gateway without it does);
 * 3. waits for the ingestor to catch up and says what was stored and how to look at it.
 *
 * Safe to run again: event ids are deterministic in time, so a rerun's events are duplicates
 * (stored once) except for the hours that passed since the last run.
 */
import 'reflect-metadata';
import { Kafka, logLevel } from 'kafkajs';
import { ConflictError } from '@tokenmeter/billing';
import { loadConfig, type TokenmeterConfig } from '@tokenmeter/config';
import {
  AccountsRepository,
  CreditGrantsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  IngestProgressRepository,
  createDatabase,
  PriceBookRepository,
  Transactor,
  UsageReadRepository,
  WebSessionsRepository,
  type PriceVersionRecord,
} from '@tokenmeter/db';
import { ensureUsageTopics } from '@tokenmeter/ingest';
import { ModelsService } from '@tokenmeter/prices';
import { AccountsService } from '../apps/api/src/admin/accounts.service';
import { ApiKeysService } from '@tokenmeter/auth';
import type { Role } from '../apps/api/src/auth/principal';
import type { Actor } from '../apps/api/src/common/actor';
import { integerArg, refuseUnknownArgs } from '../bench/args';
import { SEND_BATCH, sendInBatches } from '../bench/usage-events';
import { produceRaw } from '../test/helpers/kafka';
import { DEMO_ACCOUNTS } from './demo-accounts';
import { describeDemo } from './demo-summary';
import { buildDemoTraffic, type DemoTraffic } from './demo-traffic';

const DAY_MS = 86_400_000;

/**
 * The demo's price change: deepseek-r1 at about half its seeded rates from the UTC midnight
 * nearest the middle of the traffic, so the cost chart visibly steps down while request counts do
 * not. Created through ModelsService like `POST /admin/models/deepseek-r1/prices`.
 */
export const DEMO_PRICE_CHANGE = { modelId: 'deepseek-r1', inputPerMTok: '0.28', outputPerMTok: '1.12', cacheReadPerMTok: '0.11', cacheWritePerMTok: null };

/** API keys are found again by name, so a rerun does not mint another pair (a secret is shown only once). */
const ADMIN_KEY_NAME = 'demo admin';
const ACCOUNT_KEY_NAME = `demo ${DEMO_ACCOUNTS[0].name}`;

export interface DemoOptions {
  events: number;
  days: number;
  now: Date;
  /** Create the admin and account keys if they do not exist yet (default true). */
  createKeys?: boolean;
  /** Stop waiting for the ingestor once it has made no progress for this long (default 20 s). */
  stallSeconds?: number;
  log: (line: string) => void;
}

export interface DemoReport {
  topic: string;
  traffic: Omit<DemoTraffic, 'published' | 'malformedMessages'>;
  messages: number;
  accounts: { created: string[]; named: string[]; present: string[] };
  priceChange: { version: PriceVersionRecord; previous: PriceVersionRecord; created: boolean };
  keys: { role: Role; id: string; accountId: string | null; key: string }[];
  /** Whether the ingestor had committed everything published when the demo stopped waiting. */
  caughtUp: boolean;
  /** Events the rollups gained for the demo accounts while the demo ran (null if not caught up). */
  newEvents: number | null;
}

export async function runDemo(config: TokenmeterConfig, options: DemoOptions): Promise<DemoReport> {
  const { log } = options;
  const topic = config.kafka.topic;
  const db = createDatabase(config.databaseUrl, 3);
  const kafka = new Kafka({ clientId: `${config.kafka.clientId}-demo`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING });
  // The demo writes with the database's authority, like the CLI: audit entries carry no actor key.
  const actor: Actor = { keyId: null, requestId: `demo:${process.pid}` };
  try {
    const priceBook = new PriceBookRepository(db.pool);
    const audit = new AuditLogRepository(db.pool);
    const transactor = new Transactor(db.pool);
    const accountsRepository = new AccountsRepository(db.pool);
    const usage = new UsageReadRepository(db.pool);

    const traffic = buildDemoTraffic(options);
    log(
      `${traffic.events} events over ${options.days} days (${traffic.from.toISOString()} to now) for ${DEMO_ACCOUNTS.length} accounts, ` +
        `to ${topic} on ${config.kafka.brokers.join(',')}`,
    );

    const accountsService = new AccountsService(accountsRepository, audit, transactor, new CreditGrantsRepository(db.pool));
    const accounts = await ensureAccounts(accountsService, accountsRepository, actor);
    const priceChange = await ensurePriceChange(new ModelsService(priceBook, audit, transactor), traffic, actor);
    const keysService = new ApiKeysService(new ApiKeysRepository(db.pool), accountsRepository, audit, transactor, new WebSessionsRepository(db.pool));
    const keys = options.createKeys === false ? [] : await ensureKeys(keysService, actor);

    const storedBefore = await demoRequests(usage, traffic);
    await ensureUsageTopics(kafka, config.kafka, { warn: (_fields: object, message: string) => log(`warning: ${message}`) });
    const started = Date.now();
    await sendInBatches({ brokers: config.kafka.brokers, topic, clientId: `${config.kafka.clientId}-demo` }, inBatches(traffic, log));
    await produceRaw(kafka, topic, traffic.malformedMessages);
    const messages = traffic.published.length + traffic.malformedMessages.length;
    log(`published ${messages} messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const caughtUp = await waitForIngestor(kafka, new IngestProgressRepository(db.pool), topic, (options.stallSeconds ?? 20) * 1000, log);
    const newEvents = caughtUp ? (await demoRequests(usage, traffic)) - storedBefore : null;
    const { published: _published, malformedMessages: _malformed, ...summary } = traffic;
    const report: DemoReport = { topic, traffic: summary, messages, accounts, priceChange, keys, caughtUp, newEvents };
    for (const line of await describeDemo(report, usage, config)) log(line);
    return report;
  } finally {
    await db.close();
  }
}

/** Creates the demo accounts; names a bare row that ingest created; leaves an account someone renamed alone. */
async function ensureAccounts(service: AccountsService, repository: AccountsRepository, actor: Actor): Promise<DemoReport['accounts']> {
  const result: DemoReport['accounts'] = { created: [], named: [], present: [] };
  for (const a of DEMO_ACCOUNTS) {
    try {
      await service.createAccount({ id: a.id, name: a.name, email: a.email }, actor);
      result.created.push(a.id);
      continue;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    const existing = await repository.getAccount(a.id);
    if (existing?.name === null) {
      await service.updateAccount(a.id, { name: a.name, email: a.email }, actor);
      result.named.push(a.id);
    } else {
      result.present.push(a.id);
    }
  }
  return result;
}

/**
 * Adds DEMO_PRICE_CHANGE unless the model already has a version after its first one (an earlier
 * demo run, or an admin's own change): price versions are immutable, so a rerun must not stack
 * another one, and the ingestor prices each event with the version in force at its occurred_at.
 */
async function ensurePriceChange(service: ModelsService, traffic: DemoTraffic, actor: Actor): Promise<DemoReport['priceChange']> {
  const model = (await service.listModels()).find((m) => m.id === DEMO_PRICE_CHANGE.modelId);
  if (!model || model.versions.length === 0) {
    throw new Error(`the price book has no ${DEMO_PRICE_CHANGE.modelId}: run \`npm run db:seed\` (npm start does)`);
  }
  const [first, ...later] = model.versions;
  if (later.length > 0) return { version: later[later.length - 1], previous: later.length > 1 ? later[later.length - 2] : first, created: false };
  const middle = (traffic.from.getTime() + traffic.to.getTime()) / 2;
  const effectiveFrom = new Date(Math.round(middle / DAY_MS) * DAY_MS);
  const version = await service.createPriceVersion({ ...DEMO_PRICE_CHANGE, effectiveFrom }, actor);
  return { version, previous: first, created: true };
}

/** One admin key and one key for the first account, through the same service as `npm run cli -- keys create`. */
async function ensureKeys(service: ApiKeysService, actor: Actor): Promise<DemoReport['keys']> {
  const wanted = [
    { role: 'admin' as const, accountId: null, name: ADMIN_KEY_NAME },
    { role: 'account' as const, accountId: DEMO_ACCOUNTS[0].id, name: ACCOUNT_KEY_NAME },
  ];
  const existing = await service.listApiKeys({ limit: 1000 });
  const created: DemoReport['keys'] = [];
  for (const w of wanted) {
    if (existing.some((k) => k.name === w.name && k.role === w.role && k.revokedAt === null)) continue;
    const { key, record } = await service.createApiKey(w, actor);
    created.push({ role: record.role as Role, id: record.id, accountId: record.accountId, key });
  }
  return created;
}

function* inBatches(traffic: DemoTraffic, log: (line: string) => void): Generator<DemoTraffic['published']> {
  let lastReport = Date.now();
  for (let i = 0; i < traffic.published.length; i += SEND_BATCH) {
    yield traffic.published.slice(i, i + SEND_BATCH);
    if (Date.now() - lastReport > 2000) {
      log(`published ${Math.min(traffic.published.length, i + SEND_BATCH)} / ${traffic.published.length} events`);
      lastReport = Date.now();
    }
  }
}

/** Requests of the demo accounts in the demo's range, from the hourly rollups (what the dashboards read). */
async function demoRequests(usage: UsageReadRepository, traffic: DemoTraffic): Promise<number> {
  let requests = 0;
  for (const a of DEMO_ACCOUNTS) requests += Number((await usage.summarizeAccount(a.id, traffic.from, traffic.to)).totals.requests);
  return requests;
}

/**
 * Waits until the ingestor's committed progress (ingest_progress, written in the same transaction
 * as the events) reaches the topic's end offsets as they were right after publishing. Gives up,
 * saying so, once nothing has moved for `stallMs`: no ingestor is running, or it is stuck.
 */
async function waitForIngestor(
  kafka: Kafka,
  ingestProgress: IngestProgressRepository,
  topic: string,
  stallMs: number,
  log: (line: string) => void,
): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const target = ends.reduce((sum, p) => sum + Number(p.high), 0);
  let lastCommitted = -1;
  let lastMoved = Date.now();
  let lastReport = Date.now();
  let reported = -1;
  log(`waiting for the ingestor to store them (it commits ${topic}'s offsets in ingest_progress)`);
  for (;;) {
    const progress = new Map((await ingestProgress.listIngestProgress(topic)).map((p) => [p.partition, Number(p.nextOffset)]));
    const committed = ends.reduce((sum, p) => sum + Math.min(Number(p.high), progress.get(p.partition) ?? 0), 0);
    if (committed >= target) return true;
    if (committed !== lastCommitted) {
      lastCommitted = committed;
      lastMoved = Date.now();
    } else if (Date.now() - lastMoved > stallMs) {
      log(`the ingestor has not moved for ${stallMs / 1000} s (${target - committed} messages of ${topic} not ingested yet): is it running? \`npm start\` runs one`);
      return false;
    }
    if (Date.now() - lastReport > 2000 && committed !== reported) {
      log(`ingested ${committed} / ${target} messages of ${topic}`);
      lastReport = Date.now();
      reported = committed;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const USAGE = 'Usage: npm run demo [-- --events N (default 30000, at most 200000)] [--days D (default 28, at most 90)]';

async function main(): Promise<void> {
  let events: number;
  let days: number;
  try {
    refuseUnknownArgs(['events', 'days']);
    // Capped so the whole backlog is built in memory comfortably; the ingest benchmark does millions.
    events = integerArg('events', 30_000, 200_000);
    days = integerArg('days', 28, 90);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    process.exit(2);
  }
  await runDemo(loadConfig(), { events, days, now: new Date(), log: (line) => console.log(line.startsWith('  ') || line === '' ? line : `[demo] ${line}`) });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    console.error('(npm start brings up Kafka and Postgres, migrates and seeds; npm run services:status shows what runs)');
    process.exit(1);
  });
}
