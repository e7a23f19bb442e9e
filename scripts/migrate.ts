/**
 * npm run db:migrate [-- --dir <migrations dir>]
 *
 * Our `prisma migrate deploy` (the Prisma CLI's native schema engine is not available here):
 * applies the pending folders of prisma/migrations to DATABASE_URL and records them in
 * `_prisma_migrations` exactly as Prisma does. Logic and semantics: libs/db/src/migrations.ts.
 * Exit code 0 when the database is up to date, 1 on any error (P3009 failed migration in the
 * database, P3018 migration failed now, connection errors).
 */
import path from 'node:path';
import { applyMigrations, listMigrationFolders, MigrationError, redactDatabaseUrl } from '@tokenmeter/db/migrations';

const DEFAULT_DATABASE_URL = 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter';

function migrationsDirFromArgs(argv: string[]): string {
  const i = argv.indexOf('--dir');
  if (i >= 0 && argv[i + 1]) return path.resolve(argv[i + 1]);
  return path.resolve(__dirname, '../prisma/migrations');
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
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
