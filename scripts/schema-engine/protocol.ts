/** What scripts/schema-engine/client.ts asks its worker, and how the worker answers (JSON over stdio). */

export interface SchemaFile {
  /** Used in error messages only. */
  path: string;
  content: string;
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

export type WorkerRequest = { op: 'diff'; databaseUrl: string; from: SchemaSource; to: SchemaSource };

export type WorkerReply = { ok: true; value: SchemaDiff } | { ok: false; error: string };

/** The worker's one stdout line that carries the reply (anything else on stdout is ignored). */
export const RESULT_MARKER = '@@schema-engine-result@@';
