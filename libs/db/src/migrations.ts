/**
 * Migration tooling that works without Prisma's native schema engine (it cannot be downloaded
 * here; see /work/shared/notes/infra.md, "Prisma 7 offline").
 *
 * Two parts:
 *
 * 1. applyMigrations(): our own `prisma migrate deploy`. It writes `_prisma_migrations` exactly
 *    as Prisma 7 does (same DDL, same advisory lock, same rows, same refusal on failed rows), so
 *    the real Prisma CLI can take over a database migrated by this code and vice versa. It only
 *    needs `pg`.
 *
 * 2. diffSchemas() / createMigrationScript(): the schema engine compiled to WebAssembly
 *    (@prisma/schema-engine-wasm, pinned to the hash of the installed CLI's engines) driven through
 *    @prisma/adapter-pg. That package is ESM with a `.wasm` import, which neither ts-jest nor plain
 *    CommonJS can load, so it runs in a short-lived child Node process (this file, started with
 *    `--schema-engine-worker`) and talks JSON over stdio. Internal Prisma API: the versions are
 *    pinned exactly and test/integration/schema-drift.test.ts fails if it stops working.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client, DatabaseError, Pool } from 'pg';

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

const MIGRATION_FILE = 'migration.sql';
const LOCKFILE = 'migration_lock.toml';
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

// ---------------------------------------------------------------------------------------------
// Schema engine (Wasm) in a child process
// ---------------------------------------------------------------------------------------------

export interface SchemaFile {
  /** Used in error messages only. */
  path: string;
  content: string;
}

export function readSchemaFile(schemaPath: string): SchemaFile {
  return { path: schemaPath, content: readFileSync(schemaPath, 'utf8') };
}

/**
 * What to diff. `database` is the database at `databaseUrl` as it is now; `migrations` is the
 * schema obtained by replaying a migrations folder on a temporary shadow database (created next
 * to `databaseUrl`'s database, dropped afterwards); `schema` is a Prisma schema.
 */
export type SchemaSource = { kind: 'migrations'; dir: string } | { kind: 'schema'; schema: SchemaFile } | { kind: 'database' };

export interface SchemaDiff {
  /** True when both sides describe the same schema. */
  empty: boolean;
  /** The SQL that turns `from` into `to` (the engine's "-- This is an empty migration." when empty). */
  script: string;
}

export interface SchemaEngineOptions {
  /** Main connection; also where shadow databases are created (needs CREATEDB). */
  databaseUrl: string;
  /** Give up after this long (the wasm engine is usually done in 1-3 s). */
  timeoutMs?: number;
}

/** SQL that would take `from` to `to`, computed by Prisma's schema engine (what `prisma migrate diff --script` prints). */
export async function diffSchemas(opts: SchemaEngineOptions & { from: SchemaSource; to: SchemaSource }): Promise<SchemaDiff> {
  const result = await runSchemaEngineWorker({ op: 'diff', databaseUrl: opts.databaseUrl, from: opts.from, to: opts.to }, opts.timeoutMs);
  return result as SchemaDiff;
}

/**
 * The SQL a new migration needs so that `migrationsDir` reaches `schema` (what
 * `prisma migrate diff --from-migrations <dir> --to-schema <schema> --script` prints), or null when
 * there is nothing to migrate. Writes nothing.
 *
 * Not the engine's createMigration (what `migrate dev --create-only` uses, which also adds the
 * data-loss warnings as a comment): in schema-engine-wasm 7.10 createMigration and evaluateDataLoss
 * fail with "PostgreSQL shadow DB must be provided through an external factory"; only diff and
 * devDiagnostic are handed the adapter factory that can make a shadow database.
 */
export async function createMigrationScript(
  opts: SchemaEngineOptions & { migrationsDir: string; schema: SchemaFile },
): Promise<string | null> {
  const diff = await diffSchemas({
    databaseUrl: opts.databaseUrl,
    timeoutMs: opts.timeoutMs,
    from: { kind: 'migrations', dir: opts.migrationsDir },
    to: { kind: 'schema', schema: opts.schema },
  });
  return diff.empty ? null : diff.script;
}

type WorkerRequest = { op: 'diff'; databaseUrl: string; from: SchemaSource; to: SchemaSource };

const WORKER_FLAG = '--schema-engine-worker';
const RESULT_MARKER = '@@schema-engine-result@@';

function runSchemaEngineWorker(request: WorkerRequest, timeoutMs = 120_000): Promise<unknown> {
  const isTs = __filename.endsWith('.ts');
  const args = isTs ? ['-r', require.resolve('ts-node/register/transpile-only'), __filename, WORKER_FLAG] : [__filename, WORKER_FLAG];
  const env = { ...process.env };
  if (isTs) env.TS_NODE_PROJECT = findUp(path.dirname(__filename), 'tsconfig.json') ?? env.TS_NODE_PROJECT;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`schema engine worker timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      const reply = line ? (JSON.parse(line.slice(RESULT_MARKER.length)) as { ok: boolean; value?: unknown; error?: string }) : null;
      if (reply?.ok) return resolve(reply.value);
      const engineLog = stderr.trim() ? `\n--- schema engine worker stderr ---\n${stderr.trim()}` : '';
      reject(new Error(`schema engine failed (worker exit code ${code}): ${reply?.error ?? 'no result'}${engineLog}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

function findUp(dir: string, file: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, file))) return path.join(d, file);
    if (path.dirname(d) === d) return undefined;
  }
}

// --- worker side (runs in the child process) --------------------------------------------------

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-require-imports */

/**
 * pg type OIDs that the schema describer selects from the catalogue but @prisma/adapter-pg 7.10
 * cannot map to a column type ("Column type 'char' could not be deserialized"): "char", int2vector,
 * regproc, oidvector, pg_node_tree, regclass, regtype. pg returns them as strings, so report them as text.
 */
const TEXT_LIKE_OIDS = new Set([18, 22, 24, 30, 194, 2205, 2206]);
const TEXT_OID = 25;

function patchQueryable<T extends object>(queryable: T): T {
  const q = queryable as any;
  if (typeof q.performIO !== 'function') {
    throw new Error('@prisma/adapter-pg internals changed (no performIO); revisit libs/db/src/migrations.ts');
  }
  const performIO = q.performIO.bind(q);
  q.performIO = async (query: unknown) => {
    const result = await performIO(query);
    for (const field of result?.fields ?? []) if (TEXT_LIKE_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID;
    return result;
  };
  return queryable;
}

/**
 * Wraps an adapter-pg adapter for the schema engine: executeScript sends the whole script as one
 * simple query (adapter-pg splits on ';', which breaks $$ bodies and is not atomic), and catalogue
 * columns of type "char" & co. are reported as text.
 */
function engineAdapter(adapter: any, pool: Pool): any {
  patchQueryable(adapter);
  const startTransaction = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (...args: unknown[]) => patchQueryable(await startTransaction(...args));
  adapter.executeScript = async (script: string) => {
    try {
      await pool.query(script);
    } catch (error) {
      adapter.onError(error); // maps the pg error to a DriverAdapterError, as adapter-pg does
    }
  };
  return adapter;
}

function withDatabase(databaseUrl: string, database: string): string {
  const u = new URL(databaseUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

function migrationAwareFactory(databaseUrl: string): any {
  const { PrismaPg } = require('@prisma/adapter-pg');
  const connect = async (url: string, onDispose?: () => Promise<void>) => {
    const pool = new Pool({ connectionString: url, max: 2, application_name: 'tokenmeter-schema-engine' });
    pool.on('error', () => undefined);
    const adapter = await new PrismaPg(pool, { disposeExternalPool: true }).connect();
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await onDispose?.();
    };
    return engineAdapter(adapter, pool);
  };
  return {
    provider: 'postgres',
    adapterName: '@prisma/adapter-pg',
    connect: () => connect(databaseUrl),
    // Our own shadow database handling: adapter-pg's connectToShadowDb passes {...config, database}
    // to pg, where a connectionString overrides `database`, i.e. it would replay into the main database.
    async connectToShadowDb() {
      const name = `prisma_migrate_shadow_db_${randomUUID().replace(/-/g, '')}`;
      const admin = new Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE "${name}"`);
      return connect(withDatabase(databaseUrl, name), async () => {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end();
      });
    },
  };
}

function loadSchemaEngine(): any {
  // The package entry imports the .wasm as an ES module (bundler style); do by hand what it does.
  const bgPath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const bg = require(bgPath); // require(esm): Node >= 20.19 (package.json engines)
  const { WebAssembly: Wasm } = globalThis as any; // not in lib ES2022 / @types/node 20
  const wasm = new Wasm.Module(readFileSync(path.join(path.dirname(bgPath), 'schema_engine_bg.wasm')));
  const instance = new Wasm.Instance(wasm, { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  (instance.exports as any).__wbindgen_start();
  return bg;
}

function migrationsList(dir: string): any {
  const lockfilePath = path.join(dir, LOCKFILE);
  return {
    baseDir: path.resolve(dir),
    // The engine refuses a migrations folder without a lockfile; this repo may not have one yet.
    lockfile: {
      path: LOCKFILE,
      content: existsSync(lockfilePath) ? readFileSync(lockfilePath, 'utf8') : 'provider = "postgresql"\n',
    },
    shadowDbInitScript: '',
    migrationDirectories: listMigrationFolders(dir).map((m) => ({
      path: m.name,
      migrationFile: { path: MIGRATION_FILE, content: { tag: 'ok', value: m.bytes.toString('utf8') } },
    })),
  };
}

function diffTarget(source: SchemaSource): any {
  switch (source.kind) {
    case 'migrations':
      return { tag: 'migrations', ...migrationsList(source.dir) };
    case 'schema':
      return { tag: 'schemaDatamodel', files: [{ path: source.schema.path, content: source.schema.content }] };
    case 'database':
      // With a driver adapter, a schemaDatasource target is read through the adapter's main connection.
      return { tag: 'schemaDatasource', configDir: process.cwd(), files: [{ path: DATASOURCE_ONLY.path, content: DATASOURCE_ONLY.content }] };
  }
}

/** A schema with just the datasource: the engine needs one to start; the adapter decides the connection. */
const DATASOURCE_ONLY: SchemaFile = { path: 'datasource.prisma', content: 'datasource db {\n  provider = "postgresql"\n}\n' };

async function workerMain(request: WorkerRequest): Promise<SchemaDiff> {
  const { bindMigrationAwareSqlAdapterFactory } = require('@prisma/driver-adapter-utils');
  const bg = loadSchemaEngine();
  const engine = await bg.SchemaEngine.new(
    { datamodels: [[DATASOURCE_ONLY.path, DATASOURCE_ONLY.content]] },
    (line: string) => process.stderr.write(`${line}\n`),
    bindMigrationAwareSqlAdapterFactory(migrationAwareFactory(request.databaseUrl)),
  );
  try {
    const res = await engine.diff({
      from: diffTarget(request.from),
      to: diffTarget(request.to),
      script: true,
      exitCode: true, // exitCode 2 when the diff is not empty
      filters: { externalTables: [], externalEnums: [] },
    });
    return { empty: res.exitCode === 0, script: res.stdout ?? '' };
  } finally {
    engine.free();
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.stack ?? e.message;
  return typeof e === 'string' ? e : JSON.stringify(e);
}

if (require.main === module && process.argv.includes(WORKER_FLAG)) {
  let input = '';
  process.stdin.on('data', (d: Buffer) => (input += d.toString()));
  process.stdin.on('end', () => {
    workerMain(JSON.parse(input) as WorkerRequest)
      .then((value) => ({ ok: true, value }), (e: unknown) => ({ ok: false, error: errorText(e) }))
      .then((reply) => {
        process.stdout.write(`${RESULT_MARKER}${JSON.stringify(reply)}\n`, () => process.exit(reply.ok ? 0 : 1));
      });
  });
}
