import { InvoicesRepository, PriceBookRepository, UsageEventsRepository, type Database } from '@tokenmeter/db';
import { PriceBookCache, UsageIngestor, type IngestMessage } from '@tokenmeter/ingest';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService, StripeWebhookService } from '@tokenmeter/invoicing';
import { SdkStripeGateway } from '@tokenmeter/stripe';
import type { GatewayEvent } from '../factories/usage-events';

export const WEBHOOK_SECRET = 'whsec_test_invoicing';

/** The invoicing services wired as the apps wire them, against `stripeBase` (a proxy or stripe-mock). */
export function invoicingFor(db: Database, stripeBase: string, now: () => Date, opts: { maxInFlight?: number } = {}) {
  const repo = new InvoicesRepository(db.pool);
  const stripe = new SdkStripeGateway({
    apiKey: 'sk_test_tokenmeter',
    apiBase: stripeBase,
    webhookSecret: WEBHOOK_SECRET,
    maxInFlight: opts.maxInFlight ?? 10,
    // Fast backoff in tests; 4 attempts per call.
    retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    timeoutMs: 5000,
  });
  const sync = new InvoiceSyncService(repo, stripe);
  const close = new InvoiceCloseService(repo, sync, { graceMinutes: 60, clock: now });
  return {
    repo,
    stripe,
    sync,
    closer: close,
    webhooks: new StripeWebhookService(repo, stripe),
    reconciliation: new ReconciliationService(repo, stripe),
  };
}

/** Ingests gateway events through the real ingestion path, so every cost is the real price. */
export async function ingest(db: Database, events: GatewayEvent[], now = new Date('2026-12-15T00:00:00Z')): Promise<void> {
  const ingestor = new UsageIngestor(new UsageEventsRepository(db.pool), new PriceBookCache(new PriceBookRepository(db.pool)), () => now);
  const messages: IngestMessage[] = events.map((value) => ({ value, key: null }));
  const outcomes = await ingestor.ingest(messages, 'http');
  const bad = outcomes.filter((o) => o.status !== 'accepted' && o.status !== 'duplicate');
  if (bad.length > 0) throw new Error(`ingest failed: ${JSON.stringify(bad)}`);
}

/** Marks Kafka ingestion as past `at` on one partition (the close completeness rule reads it). */
export async function setIngestProgress(db: Database, at: Date): Promise<void> {
  await db.pool.query(
    `INSERT INTO ingest_progress (topic, partition, next_offset, max_occurred_at) VALUES ('gateway.usage.v1', 0, 1, $1)
     ON CONFLICT (topic, partition) DO UPDATE SET max_occurred_at = EXCLUDED.max_occurred_at`,
    [at],
  );
}
