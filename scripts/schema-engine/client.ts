/**
 * Prisma's schema engine, compiled to WebAssembly (@prisma/schema-engine-wasm, pinned to the hash
 * of the installed CLI's engines), as a library: what `prisma migrate diff` computes, without the
 * native engine we cannot download (README, "Migrations without Prisma's native engine").
 *
 * Dev tooling only (`npm run db:migration`, test/integration/schema-drift.test.ts); no app loads
 * it. The engine package is ESM with a `.wasm` import, which neither ts-jest nor plain CommonJS can
 * load, so it runs in a short-lived child Node process (./worker.ts) that answers in JSON over
 * stdio. Internal Prisma API: the versions are pinned exactly, and schema-drift.test.ts fails if
 * it stops working.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULT_MARKER, type SchemaDiff, type SchemaFile, type SchemaSource, type WorkerReply, type WorkerRequest } from './protocol';

export type { SchemaDiff, SchemaFile, SchemaSource } from './protocol';

export function readSchemaFile(schemaPath: string): SchemaFile {
  return { path: schemaPath, content: readFileSync(schemaPath, 'utf8') };
}

export interface SchemaEngineOptions {
  /** Main connection; also where shadow databases are created (needs CREATEDB). */
  databaseUrl: string;
  /** Give up after this long (the wasm engine is usually done in 1-3 s). */
  timeoutMs?: number;
}

/** SQL that would take `from` to `to`, computed by Prisma's schema engine (what `prisma migrate diff --script` prints). */
export async function diffSchemas(opts: SchemaEngineOptions & { from: SchemaSource; to: SchemaSource }): Promise<SchemaDiff> {
  return runWorker({ op: 'diff', databaseUrl: opts.databaseUrl, from: opts.from, to: opts.to }, opts.timeoutMs);
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

function runWorker(request: WorkerRequest, timeoutMs = 120_000): Promise<SchemaDiff> {
  // From TypeScript sources (ts-node, jest) the worker runs through ts-node too, with the repo's
  // path aliases; compiled, it is plain JavaScript next to this file.
  const isTs = __filename.endsWith('.ts');
  const worker = path.join(__dirname, isTs ? 'worker.ts' : 'worker.js');
  const args = isTs
    ? ['-r', require.resolve('ts-node/register/transpile-only'), '-r', require.resolve('tsconfig-paths/register'), worker]
    : [worker];
  const env = { ...process.env };
  if (isTs) env.TS_NODE_PROJECT = findUp(__dirname, 'tsconfig.json') ?? env.TS_NODE_PROJECT;
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
      const reply = line ? (JSON.parse(line.slice(RESULT_MARKER.length)) as WorkerReply) : null;
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
