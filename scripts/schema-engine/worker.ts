/**
 * The child process of scripts/schema-engine/client.ts: reads one WorkerRequest as JSON on stdin,
 * runs Prisma's Wasm schema engine through @prisma/adapter-pg, and prints one RESULT_MARKER line.
 * Everything here leans on Prisma internals (the engine's JS glue, adapter-pg's performIO), which
 * is why it lives in scripts/ and runs in its own process: no app ever loads it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Pool } from 'pg';
import { listMigrationFolders, MIGRATION_FILE } from '@tokenmeter/db/migrations';
import { RESULT_MARKER, type SchemaDiff, type SchemaFile, type SchemaSource, type WorkerReply, type WorkerRequest } from './protocol';

const LOCKFILE = 'migration_lock.toml';

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
    throw new Error('@prisma/adapter-pg internals changed (no performIO); revisit scripts/schema-engine/worker.ts');
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

process.stdin.setEncoding('utf8');
let input = '';
process.stdin.on('data', (d: string) => (input += d));
process.stdin.on('end', () => {
  workerMain(JSON.parse(input) as WorkerRequest)
    .then((value): WorkerReply => ({ ok: true, value }), (e: unknown): WorkerReply => ({ ok: false, error: errorText(e) }))
    .then((reply) => {
      process.stdout.write(`${RESULT_MARKER}${JSON.stringify(reply)}\n`, () => process.exit(reply.ok ? 0 : 1));
    });
});
