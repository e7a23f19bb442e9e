/**
 * npm run db:migrate [-- --dir <migrations dir>]
 *
 * Our `prisma migrate deploy` (the Prisma CLI's native schema engine is not available here):
 * applies the pending folders of prisma/migrations to DATABASE_URL and records them in
 * `_prisma_migrations` exactly as Prisma does. Logic and semantics: libs/db/src/migrations/apply.ts.
 * Exit code 0 when the database is up to date, 1 on any error (P3009 failed migration in the
 * database, P3018 migration failed now, connection errors).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@tokenmeter/config';
import { applyMigrations, listMigrationFolders, MigrationError, redactDatabaseUrl } from '@tokenmeter/db/migrations';

function migrationsDirFromArgs(argv: string[]): string {
  const i = argv.indexOf('--dir');
  if (i >= 0 && argv[i + 1]) return path.resolve(argv[i + 1]);
  return defaultMigrationsDir();
}

/**
 * prisma/migrations of the checkout or image this file runs from: ../prisma/migrations from
 * scripts/migrate.ts (ts-node), ../../prisma/migrations from dist/scripts/migrate.js (the image).
 */
function defaultMigrationsDir(): string {
  for (let dir = path.resolve(__dirname, '..'); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'prisma/migrations');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '../prisma/migrations'); // listMigrationFolders names it
  }
}

async function main(): Promise<void> {
  const { databaseUrl } = loadConfig();
  const migrationsDir = migrationsDirFromArgs(process.argv.slice(2));
  const found = listMigrationFolders(migrationsDir).length;

  console.log(`Datasource: ${redactDatabaseUrl(databaseUrl)}`);
  console.log(`${found} migration${found === 1 ? '' : 's'} found in ${path.relative(process.cwd(), migrationsDir) || '.'}`);

  const applied = await applyMigrations(databaseUrl, migrationsDir);

  console.log(
    applied.length === 0
      ? 'No pending migrations to apply.'
      : `Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}`,
  );
}

main().catch((error: unknown) => {
  if (error instanceof MigrationError) {
    console.error(`Error: ${error.code}\n\n${error.message}`);
  } else {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  }
  process.exitCode = 1;
});
