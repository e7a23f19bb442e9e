/**
 * prisma/schema.prisma (what the Prisma client is generated from) and prisma/migrations (what
 * databases are built from) must describe the same schema. Prisma's own schema engine (Wasm build,
 * see scripts/schema-engine/client.ts) computes the SQL between them; any SQL at all is drift.
 *
 * On failure the message shows the SQL that would bring the migrations up to schema.prisma;
 * `npm run db:migration -- <name>` writes exactly that as a new migration.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyMigrations } from '@tokenmeter/db/migrations';
import { diffSchemas, readSchemaFile, type SchemaDiff } from '../../scripts/schema-engine/client';
import { createScratchDatabase, TEST_DATABASE_URL } from '../helpers/db';

const ROOT = path.resolve(__dirname, '../..');
const SCHEMA_PATH = path.join(ROOT, 'prisma/schema.prisma');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma/migrations');

jest.setTimeout(120_000);

function assertNoDrift(diff: SchemaDiff, what: string): void {
  if (diff.empty) return;
  throw new Error(
    `${what} differ from prisma/schema.prisma.\n` +
      `SQL that would make them match schema.prisma (create it with \`npm run db:migration -- <name>\`, ` +
      `or fix the schema if the migrations are right):\n\n${diff.script}`,
  );
}

describe('schema.prisma vs prisma/migrations', () => {
  it('replaying the migrations gives exactly the schema in schema.prisma', async () => {
    const diff = await diffSchemas({
      databaseUrl: TEST_DATABASE_URL,
      from: { kind: 'migrations', dir: MIGRATIONS_DIR },
      to: { kind: 'schema', schema: readSchemaFile(SCHEMA_PATH) },
    });
    assertNoDrift(diff, 'The migrations in prisma/migrations');
  });

  it('a database migrated by applyMigrations (npm run db:migrate) matches schema.prisma', async () => {
    const scratch = await createScratchDatabase('tokenmeter_drift');
    try {
      await applyMigrations(scratch.url, MIGRATIONS_DIR, () => undefined);
      const diff = await diffSchemas({
        databaseUrl: scratch.url,
        from: { kind: 'database' },
        to: { kind: 'schema', schema: readSchemaFile(SCHEMA_PATH) },
      });
      assertNoDrift(diff, 'The tables created by applyMigrations');
    } finally {
      await scratch.drop();
    }
  });

  // Guards the guard: if the engine plumbing silently returned "empty" for everything, the tests
  // above would pass forever. A schema with one extra column must produce that column's DDL.
  it('detects a column that is in the schema but not in the migrations', async () => {
    const schema = readSchemaFile(SCHEMA_PATH);
    const changed = schema.content.replace(/model Account \{\n/, 'model Account {\n  driftProbe Int? @map("drift_probe")\n');
    expect(changed).not.toBe(schema.content);
    const diff = await diffSchemas({
      databaseUrl: TEST_DATABASE_URL,
      from: { kind: 'migrations', dir: MIGRATIONS_DIR },
      to: { kind: 'schema', schema: { path: schema.path, content: changed } },
    });
    expect(diff.empty).toBe(false);
    expect(diff.script).toContain('ALTER TABLE "accounts" ADD COLUMN');
    expect(diff.script).toContain('"drift_probe" INTEGER');
  });

  // The shadow database gets each migration as one script (adapter-pg alone would split it on ';'),
  // so migrations with plpgsql functions or triggers keep working with this check.
  it('replays migrations whose SQL has $$ bodies with semicolons', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tokenmeter-drift-'));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      mkdirSync(path.join(dir, '20991231000000_function'));
      writeFileSync(
        path.join(dir, '20991231000000_function', 'migration.sql'),
        'CREATE FUNCTION tm_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;\n',
      );
      const diff = await diffSchemas({
        databaseUrl: TEST_DATABASE_URL,
        from: { kind: 'migrations', dir },
        to: { kind: 'schema', schema: readSchemaFile(SCHEMA_PATH) },
      });
      assertNoDrift(diff, 'The migrations plus a function');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
