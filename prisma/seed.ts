import { SEED_MODELS, SEED_PRICE_VERSIONS } from '@tokenmeter/billing';
import { loadConfig } from '@tokenmeter/config';
import { createDatabase, PriceBookRepository } from '@tokenmeter/db';

/**
 * Seeds the price book. Idempotent: models are upserted, and price versions are immutable, so a
 * version that already exists for (model, effective_from) is left exactly as it is.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const db = createDatabase(config.databaseUrl, 2);
  try {
    const repo = new PriceBookRepository(db.pool);
    for (const m of SEED_MODELS) await repo.upsertModel(m);
    let created = 0;
    for (const v of SEED_PRICE_VERSIONS) {
      const result = await repo.createPriceVersion(v);
      if (result.created) created++;
    }
    console.log(`seed: ${SEED_MODELS.length} models, ${created} new price versions (${SEED_PRICE_VERSIONS.length - created} already present)`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error('seed failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
