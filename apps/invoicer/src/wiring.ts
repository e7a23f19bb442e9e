import { Kafka, logLevel } from 'kafkajs';
import type { TokenmeterConfig } from '@tokenmeter/config';
import { createDatabase, InvoicesRepository, type Database } from '@tokenmeter/db';
import { InvoiceCloseService, InvoiceSyncService, ReconciliationService, type IngestLagProbe } from '@tokenmeter/invoicing';
import { SdkStripeGateway } from '@tokenmeter/stripe';

export interface Invoicer {
  db: Database;
  repo: InvoicesRepository;
  stripe: SdkStripeGateway;
  sync: InvoiceSyncService;
  closer: InvoiceCloseService;
  reconciliation: ReconciliationService;
  close(): Promise<void>;
}

/**
 * Kafka high watermarks for the completeness rule ("the consumer is caught up"). If Kafka cannot
 * be asked, no partition counts as caught up: the close then waits for max_occurred_at instead.
 */
function kafkaLagProbe(config: TokenmeterConfig): { probe: IngestLagProbe; disconnect(): Promise<void> } {
  const admin = new Kafka({ clientId: `${config.kafka.clientId}-invoicer`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin();
  let connected = false;
  return {
    probe: {
      async highWatermarks() {
        try {
          if (!connected) {
            await admin.connect();
            connected = true;
          }
          const offsets = await admin.fetchTopicOffsets(config.kafka.topic);
          return new Map(offsets.map((o) => [o.partition, o.high]));
        } catch {
          return new Map();
        }
      },
    },
    disconnect: () => (connected ? admin.disconnect() : Promise.resolve()),
  };
}

export function createInvoicer(config: TokenmeterConfig, opts: { kafka?: boolean } = {}): Invoicer {
  // Pool: 4 close transactions + up to maxInFlight Stripe pushes writing their steps.
  const db = createDatabase(config.databaseUrl, Math.max(config.databasePoolSize, config.stripe.maxInFlight + 4));
  const repo = new InvoicesRepository(db.pool);
  const stripe = new SdkStripeGateway({ ...config.stripe });
  const sync = new InvoiceSyncService(repo, stripe, { invoiceConcurrency: config.stripe.maxInFlight });
  const lag = opts.kafka === false ? undefined : kafkaLagProbe(config);
  const closer = new InvoiceCloseService(repo, sync, {
    graceMinutes: config.invoicing.closeGraceMinutes,
    topic: config.kafka.topic,
    lagProbe: lag?.probe,
  });
  return {
    db,
    repo,
    stripe,
    sync,
    closer,
    reconciliation: new ReconciliationService(repo, stripe),
    async close() {
      await lag?.disconnect();
      await db.close();
    },
  };
}
