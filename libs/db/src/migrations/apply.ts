/**
 * Our own `prisma migrate deploy`, the runtime part of the migration tooling (pg only; it is what
 * `npm run db:migrate` and the image's migrate job run). It writes `_prisma_migrations` exactly as
 * Prisma 7 does (same DDL, same advisory lock, same rows, same refusal on failed rows), so the
 * real Prisma CLI can take over a database migrated by this code and vice versa. We need it
 * because Prisma's native schema engine cannot be downloaded here (README, "Migrations without
 * Prisma's native engine").
 *
 * Writing new migrations (diffing schema.prisma against the migrations) needs Prisma's schema
 * engine; that is dev tooling and lives in scripts/schema-engine/, never loaded by a running app.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client, DatabaseError } from 'pg';

/** The key `prisma migrate deploy` locks (schema-engine sql-schema-connector, postgres flavour). */
export const MIGRATE_ADVISORY_LOCK_KEY = 72707369;

/** Prisma 7's DDL for the history table, verbatim (postgres flavour, create_migrations_table). */
export const PRISMA_MIGRATIONS_TABLE_DDL = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
`;

/** The file Prisma reads in each migration folder. */
export const MIGRATION_FILE = 'migration.sql';
const RESOLVE_HINT =
  'Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve';

export type MigrationLog = (line: string) => void;

export interface MigrationFolder {
  /** Folder name, e.g. 20261129000000_init; also `_prisma_migrations.migration_name`. */
  name: string;
  /** Absolute path of the folder's migration.sql. */
  file: string;
  /** The file's bytes. */
  bytes: Buffer;
  /** Lowercase hex sha256 of the bytes, as Prisma stores it. */
  checksum: string;
}

/** Errors carry Prisma's error code: P3009 (failed migration found), P3018 (migration failed). */
export class MigrationError extends Error {
  constructor(readonly code: 'P3009' | 'P3018' | 'MIGRATIONS_DIR', readonly migrationName: string | null, message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The migration folders of `migrationsDir` in name order (files such as migration_lock.toml are skipped). */
export function listMigrationFolders(migrationsDir: string): MigrationFolder[] {
  if (!existsSync(migrationsDir)) {
    throw new MigrationError('MIGRATIONS_DIR', null, `Migrations directory ${migrationsDir} does not exist`);
  }
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = path.resolve(migrationsDir, name, MIGRATION_FILE);
      if (!existsSync(file)) {
        throw new MigrationError('MIGRATIONS_DIR', name, `Migration folder ${name} has no ${MIGRATION_FILE} (${file})`);
      }
      const bytes = readFileSync(file);
      return { name, file, bytes, checksum: sha256Hex(bytes) };
    });
}

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  started_at: Date;
  logs: string | null;
}

/**
 * Applies the not yet applied migrations of `migrationsDir` to `databaseUrl`, the way
 * `prisma migrate deploy` (Prisma 7, schema-engine apply_migrations) does:
 *
 * - one dedicated connection holds the session-level `pg_advisory_lock(72707369)` for the whole run,
 *   so concurrent runs (several replicas starting at once) apply each migration once. Prisma gives up
 *   waiting for the lock after 10 s (P1002); we wait as long as it takes, so replicas queue behind a
 *   long migration instead of failing;
 * - `_prisma_migrations` is created with Prisma's DDL if missing;
 * - any row that is unfinished and not rolled back stops the run (P3009), naming the migration;
 * - a migration counts as applied when a row with its name is not rolled back; rolled-back rows are
 *   kept as history and the migration is applied again (what `prisma migrate resolve --rolled-back` sets up);
 * - per new migration, in name order: insert the row (random uuid, sha256 checksum, started_at now(),
 *   applied_steps_count 0), run the whole file as ONE simple-protocol query (Prisma adds no BEGIN/COMMIT; Postgres
 *   runs a multi-statement query as one implicit transaction unless the file manages transactions itself), then
 *   set applied_steps_count = 1 and finished_at = now(). On error the message goes to `logs`, finished_at
 *   stays NULL and a P3018 MigrationError is thrown.
 *
 * Checksums: Prisma's deploy does not compare them at all (only `migrate dev`/`status` notice edited
 * migrations). We do compare, and only warn through `log`, so behaviour stays that of deploy.
 *
 * Returns the names of the migrations applied by this call (empty when up to date).
 */
export async function applyMigrations(
  databaseUrl: string,
  migrationsDir: string,
  log: MigrationLog = (line) => console.log(line),
): Promise<string[]> {
  const migrations = listMigrationFolders(migrationsDir);
  const client = new Client({ connectionString: databaseUrl, application_name: 'tokenmeter-migrate' });
  await client.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${MIGRATE_ADVISORY_LOCK_KEY})`);
    try {
      return await applyLocked(client, migrations, log);
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${MIGRATE_ADVISORY_LOCK_KEY})`).catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}

async function applyLocked(client: Client, migrations: MigrationFolder[], log: MigrationLog): Promise<string[]> {
  // Prisma looks for a table (relkind 'r') named _prisma_migrations in the connection's schema.
  const exists = await client.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = '_prisma_migrations' AND c.relkind = 'r' AND n.nspname = current_schema()`,
  );
  if (exists.rowCount === 0) await client.query(PRISMA_MIGRATIONS_TABLE_DDL);

  const { rows } = await client.query<MigrationRow>(
    `SELECT id, checksum, migration_name, finished_at, rolled_back_at, started_at, logs
       FROM _prisma_migrations ORDER BY started_at`,
  );

  const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length > 0) throw foundFailedMigrations(failed);

  const live = new Map<string, MigrationRow>();
  for (const row of rows) if (row.rolled_back_at === null) live.set(row.migration_name, row);

  for (const m of migrations) {
    const row = live.get(m.name);
    if (row && !checksumMatches(row.checksum, m)) {
      log(
        `Warning: migration \`${m.name}\` was modified after it was applied ` +
          `(checksum ${row.checksum} in _prisma_migrations, ${m.checksum} on disk). It is not re-applied; ` +
          `put the change in a new migration.`,
      );
    }
  }

  const applied: string[] = [];
  for (const m of migrations.filter((x) => !live.has(x.name))) {
    const started = Date.now();
    const id = randomUUID();
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name, applied_steps_count)
       VALUES ($1, $2, now(), $3, 0)`,
      [id, m.checksum, m.name],
    );
    const script = m.bytes.toString('utf8');
    try {
      // No parameters: pg uses the simple query protocol, so the whole multi-statement file (with any
      // $$-quoted function bodies) goes to the server as one string, as Prisma's engine sends it.
      await client.query(script);
    } catch (error) {
      const logs = migrationFailedMessage(m.name, script, error);
      // If the file opened its own transaction, the session is now in an aborted block.
      await client.query('ROLLBACK').catch(() => undefined);
      await client.query('UPDATE _prisma_migrations SET logs = $1 WHERE id = $2', [logs, id]);
      throw new MigrationError('P3018', m.name, logs);
    }
    await client.query('UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE id = $1', [id]);
    await client.query('UPDATE _prisma_migrations SET finished_at = now() WHERE id = $1', [id]);
    applied.push(m.name);
    log(`Applied migration ${m.name} (${Date.now() - started} ms)`);
  }
  return applied;
}

/** Prisma accepts a file whose line endings were converted (git autocrlf) as unchanged. */
function checksumMatches(stored: string, m: MigrationFolder): boolean {
  if (stored === m.checksum) return true;
  const text = m.bytes.toString('utf8');
  return stored === sha256Hex(text.replace(/\r\n/g, '\n')) || stored === sha256Hex(text.replace(/\r?\n/g, '\r\n'));
}

function foundFailedMigrations(failed: MigrationRow[]): MigrationError {
  const details = failed
    .map((r) => {
      const logs = r.logs?.trim() ? ` with the following logs:\n${r.logs.trim()}` : '';
      return `The \`${r.migration_name}\` migration started at ${r.started_at.toISOString()} failed${logs}`;
    })
    .join('\n');
  return new MigrationError(
    'P3009',
    failed[0].migration_name,
    `migrate found failed migrations in the target database, new migrations will not be applied. ${RESOLVE_HINT}\n${details}`,
  );
}

/** The text Prisma records in `logs` for a failed script (P3018), with the failing line when Postgres gives a position. */
function migrationFailedMessage(name: string, script: string, error: unknown): string {
  const code = error instanceof DatabaseError && error.code ? error.code : 'none';
  let dbError = error instanceof Error ? error.message : String(error);
  if (error instanceof DatabaseError) {
    dbError = `ERROR: ${error.message}`;
    if (error.detail) dbError += `\nDETAIL: ${error.detail}`;
    if (error.hint) dbError += `\nHINT: ${error.hint}`;
    if (error.position) {
      const before = script.slice(0, Number(error.position) - 1);
      const lineNo = before.split('\n').length;
      const lines = script.split('\n');
      const excerpt = lines
        .slice(Math.max(0, lineNo - 3), lineNo)
        .map((l, i) => `${String(Math.max(1, lineNo - 2) + i).padStart(4)}  ${l}`)
        .join('\n');
      dbError += `\n\nPosition:\n${excerpt}`;
    }
  }
  return (
    `A migration failed to apply. New migrations cannot be applied before the error is recovered from. ${RESOLVE_HINT}\n\n` +
    `Migration name: ${name}\n\nDatabase error code: ${code}\n\nDatabase error:\n${dbError}\n`
  );
}

/** postgresql://user:***@host:port/db, for log lines. */
export function redactDatabaseUrl(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}
