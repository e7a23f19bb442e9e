/**
 * npm run db:migration -- <name>
 *
 * Stands in for `prisma migrate dev --create-only --name <name>`: replays prisma/migrations on a
 * temporary shadow database, diffs the result against prisma/schema.prisma with Prisma's schema
 * engine (Wasm build, see scripts/schema-engine/client.ts) and writes the SQL to
 * prisma/migrations/<UTC yyyymmddhhmmss>_<name>/migration.sql. Prints "No changes" and writes
 * nothing when the schema already matches. Nothing is applied: review the file, then
 * `npm run db:migrate`.
 *
 * Unlike `migrate dev`, the file carries no "Warnings:" comment about data loss (the Wasm engine
 * cannot run that check on Postgres, see createMigrationScript); destructive statements are listed
 * on the console instead.
 *
 * Needs the Postgres server of DATABASE_URL (read through loadConfig: the dev database unless set)
 * to create and drop the shadow database; the database itself is not read or changed.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@tokenmeter/config';
import { listMigrationFolders } from '@tokenmeter/db/migrations';
import { createMigrationScript, readSchemaFile } from './schema-engine/client';

const ROOT = path.resolve(__dirname, '..');
const SCHEMA_PATH = path.join(ROOT, 'prisma/schema.prisma');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma/migrations');

/** Prisma's folder naming: UTC timestamp, underscore, snake_case name. */
function folderName(rawName: string, now = new Date()): string {
  const name = rawName
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 200);
  if (!name) throw new Error(`"${rawName}" gives an empty migration name; use letters, digits and _`);
  const ts = now.toISOString().replace(/[-:T]/g, '').slice(0, 14); // yyyymmddhhmmss, UTC
  return `${ts}_${name}`;
}

async function main(): Promise<void> {
  const rawName = process.argv.slice(2).find((a) => !a.startsWith('-'));
  if (!rawName) {
    console.error('Usage: npm run db:migration -- <name>   (e.g. npm run db:migration -- add_invoices)');
    process.exitCode = 2;
    return;
  }
  const folder = folderName(rawName);
  const existing = listMigrationFolders(MIGRATIONS_DIR);
  const last = existing[existing.length - 1];
  if (last && last.name >= folder) {
    throw new Error(`${folder} would not sort after the last migration ${last.name}; migrations apply in name order`);
  }

  const script = await createMigrationScript({
    databaseUrl: loadConfig().databaseUrl,
    migrationsDir: MIGRATIONS_DIR,
    schema: readSchemaFile(SCHEMA_PATH),
  });
  if (script === null) {
    console.log('No changes: prisma/schema.prisma already matches prisma/migrations. Nothing created.');
    return;
  }

  const dir = path.join(MIGRATIONS_DIR, folder);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'migration.sql'), script);
  console.log(`Created ${path.relative(process.cwd(), path.join(dir, 'migration.sql'))}:\n\n${script}`);
  const destructive = script.split('\n').filter((l) => /\bDROP\b|SET NOT NULL|\bTYPE\b|ADD CONSTRAINT|UNIQUE INDEX/i.test(l));
  if (destructive.length > 0) {
    console.log(`Check these against existing data (they can lose data or fail on existing rows):\n  ${destructive.join('\n  ')}\n`);
  }
  console.log('Review it, then apply with: npm run db:migrate');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
