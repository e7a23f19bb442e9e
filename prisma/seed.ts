import { loadConfig } from '@tokenmeter/config';
import { createDatabase, seedPriceBook } from '@tokenmeter/db';

async function main(): Promise<void> {
  const db = createDatabase(loadConfig().databaseUrl, 2);
  try {
    const r = await seedPriceBook(db.pool);
    console.log(`seed: ${r.models} models, ${r.versionsCreated} new price versions (${r.versionsPresent} already present)`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error('seed failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
