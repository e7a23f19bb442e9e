import path from 'node:path';
import { Client } from 'pg';
import { createDatabase, seedPriceBook } from '@tokenmeter/db';
import { applyMigrations } from '@tokenmeter/db/migrations';

const MIGRATIONS = path.resolve(__dirname, '../prisma/migrations');

/** A URL for `name` on the same server as `url`. */
export function databaseUrlFor(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drops and recreates a benchmark database, migrated and seeded with the price book. Returns its URL. */
export async function recreateSeededDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(adminUrl, name);
  await applyMigrations(url, MIGRATIONS, () => undefined);
  const db = createDatabase(url, 2);
  try {
    await seedPriceBook(db.pool);
  } finally {
    await db.close();
  }
  return url;
}
