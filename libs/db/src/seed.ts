import type { Pool } from 'pg';
import { SEED_MODELS, SEED_PRICE_VERSIONS } from '@tokenmeter/billing';
import { PriceBookRepository } from './price-book.repository';

/**
 * Writes the seed price book (libs/billing/src/seed-prices.ts). Idempotent: models are upserted,
 * and price versions are immutable, so an existing (model, effective_from) is left as it is.
 */
export async function seedPriceBook(pool: Pool): Promise<{ models: number; versionsCreated: number; versionsPresent: number }> {
  const repo = new PriceBookRepository(pool);
  for (const m of SEED_MODELS) await repo.upsertModel(m);
  let created = 0;
  for (const v of SEED_PRICE_VERSIONS) if ((await repo.createPriceVersion(v)).created) created++;
  return { models: SEED_MODELS.length, versionsCreated: created, versionsPresent: SEED_PRICE_VERSIONS.length - created };
}
