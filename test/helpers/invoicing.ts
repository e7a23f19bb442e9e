import pino from 'pino';
import { loadConfig } from '@tokenmeter/config';
import type { Database } from '@tokenmeter/db';
import { createInvoicing } from '@tokenmeter/invoicing';
import { SdkStripeGateway, type StripeGateway } from '@tokenmeter/stripe';
import type { GatewayEvent } from '../factories/usage-events';
import { asMessages, ingestorOn } from './ingest';
import { StripeProxy } from './stripe-proxy';
import { openTestDatabase, resetDatabase, seedPriceBook } from './tokenmeter-db';

export const WEBHOOK_SECRET = 'whsec_test_invoicing';

/**
 * The invoicing services from the apps' own composition root (createInvoicing), with the
 * configuration the apps load from this environment, against `stripe`: a base URL (a proxy or
 * stripe-mock, through the real SDK gateway with fast retries) or a gateway (a fake).
 * No broker: these tests set ingest_progress by hand, so the completeness rule reads
 * max_occurred_at only (test/e2e/invoice-close-idle-partition.test.ts covers the broker probe).
 */
export function invoicingFor(db: Database, stripe: string | StripeGateway, now: () => Date, opts: { maxInFlight?: number; maxLinesPerCall?: number } = {}) {
  const config = loadConfig({ ...process.env, STRIPE_MAX_IN_FLIGHT: String(opts.maxInFlight ?? 10), STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET });
  const gateway =
    typeof stripe === 'string'
      ? new SdkStripeGateway({
          ...config.stripe,
          apiKey: 'sk_test_tokenmeter',
          apiBase: stripe,
          // Fast backoff in tests; 4 attempts per call.
          retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
          timeoutMs: 5000,
          maxLinesPerCall: opts.maxLinesPerCall,
        })
      : stripe;
  const invoicing = createInvoicing({ db, config, stripe: gateway, kafka: null, log: pino({ level: 'silent' }), clock: now });
  return { ...invoicing, stripe: gateway };
}

/** Ingests gateway events through the real ingestion path, so every cost is the real price. */
export async function ingest(db: Database, events: GatewayEvent[], now = new Date('2026-12-15T00:00:00Z')): Promise<void> {
  const outcomes = await ingestorOn(db, () => now).ingest(asMessages(events), 'http');
  const bad = outcomes.filter((o) => o.status !== 'accepted' && o.status !== 'duplicate');
  if (bad.length > 0) throw new Error(`ingest failed: ${JSON.stringify(bad)}`);
}

/**
 * Marks Kafka ingestion as past `at` on partition 0 of the usage topic the apps are configured
 * with (KAFKA_USAGE_TOPIC): the close completeness rule reads it.
 */
export async function setIngestProgress(db: Database, at: Date, topic = loadConfig().kafka.topic): Promise<void> {
  await db.pool.query(
    `INSERT INTO ingest_progress (topic, partition, next_offset, max_occurred_at) VALUES ($2, 0, 1, $1)
     ON CONFLICT (topic, partition) DO UPDATE SET max_occurred_at = EXCLUDED.max_occurred_at`,
    [at, topic],
  );
}

/** Ingestion complete an hour past the end of November 2026: the close's completeness rule lets '2026-11' close. */
export const NOVEMBER_INGESTED = new Date('2026-12-01T01:00:00Z');

/** The start of every close test: a fresh database with the price book, `events` ingested, November ready to close. */
export async function readyToCloseNovember(db: Database, events: GatewayEvent[] = []): Promise<void> {
  await resetDatabase(db);
  await seedPriceBook(db);
  await setIngestProgress(db, NOVEMBER_INGESTED);
  if (events.length > 0) await ingest(db, events);
}

/**
 * The database and the idempotent Stripe proxy (in front of stripe-mock) of an invoicing suite, as
 * jest hooks: the proxy started before the suite's tests, both closed after them. Each test
 * prepares the database itself (readyToCloseNovember); `proxy.url` is known once it has started.
 */
export function useDatabaseAndStripeProxy(): { db: Database; proxy: StripeProxy } {
  const db = openTestDatabase();
  const proxy = new StripeProxy();
  beforeAll(() => proxy.start());
  afterAll(() => Promise.all([proxy.stop(), db.close()]));
  return { db, proxy };
}
