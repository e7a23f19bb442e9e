import { Kafka, logLevel } from 'kafkajs';
import { createLogger, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { createDatabase, type Database } from '@tokenmeter/db';
import { createInvoicing, type Invoicing } from '@tokenmeter/invoicing';
import { SdkStripeGateway } from '@tokenmeter/stripe';

export interface Invoicer extends Invoicing {
  db: Database;
  stripe: SdkStripeGateway;
}

/** The invoicer process's shared parts, with invoicing built from them by createInvoicing. */
export function createInvoicer(config: TokenmeterConfig, opts: { kafka?: boolean; log?: Logger } = {}): Invoicer {
  // Pool: 4 close transactions + up to maxInFlight Stripe pushes writing their steps.
  const db = createDatabase(config.databaseUrl, Math.max(config.databasePoolSize, config.stripe.maxInFlight + 4));
  const stripe = new SdkStripeGateway({ ...config.stripe });
  const kafka =
    opts.kafka === false
      ? null
      : new Kafka({ clientId: `${config.kafka.clientId}-invoicer`, brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 1 } });
  const invoicing = createInvoicing({ db, config, stripe, kafka, log: opts.log ?? createLogger('invoicer', config.logLevel) });
  return {
    ...invoicing,
    db,
    stripe,
    async close() {
      await invoicing.close();
      await db.close();
    },
  };
}
