/**
 * applyMigrations (npm run db:migrate) must leave `_prisma_migrations` exactly as
 * `prisma migrate deploy` would, so either tool can take over a database. Each test uses its own
 * scratch database.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyMigrations, MigrationError, PRISMA_MIGRATIONS_TABLE_DDL } from '@tokenmeter/db/migrations';
import { createScratchDatabase, type ScratchDatabase, withClient } from '../helpers/db';

const ROOT = path.resolve(__dirname, '../..');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma/migrations');
const silent = () => undefined;

jest.setTimeout(60_000);

interface Row {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

const rows = (url: string) =>
  withClient(url, async (c) => (await c.query<Row>('SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name')).rows);
const tableExists = (url: string, table: string) =>
  withClient(url, async (c) => (await c.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null);

/** A temp copy of prisma/migrations plus extra migration folders. */
function migrationsDirWith(extra: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tokenmeter-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

let db: ScratchDatabase;
const tempDirs: string[] = [];
beforeEach(async () => {
  db = await createScratchDatabase('tokenmeter_migrate');
});
afterEach(async () => {
  await db.drop();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (extra: Record<string, string>) => {
  const d = migrationsDirWith(extra);
  tempDirs.push(d);
  return d;
};

const onDisk = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();
const sha256OfFile = (dir: string, name: string) =>
  createHash('sha256').update(readFileSync(path.join(dir, name, 'migration.sql'))).digest('hex');

it('applies every migration in name order and records it like prisma migrate deploy', async () => {
  const lines: string[] = [];
  const applied = await applyMigrations(db.url, MIGRATIONS_DIR, (l) => lines.push(l));

  expect(applied).toEqual(onDisk);
  expect(lines).toHaveLength(onDisk.length);
  const recorded = await rows(db.url);
  expect(recorded.map((r) => r.migration_name)).toEqual(onDisk);
  for (const r of recorded) {
    expect(r.checksum).toBe(sha256OfFile(MIGRATIONS_DIR, r.migration_name));
    expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.finished_at).toBeInstanceOf(Date);
    expect(r.finished_at!.getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
    expect(r.applied_steps_count).toBe(1);
    expect(r.rolled_back_at).toBeNull();
    expect(r.logs).toBeNull();
  }
  expect(await tableExists(db.url, 'usage_events')).toBe(true);

  // The table is Prisma's own DDL, column for column.
  const columns = await withClient(db.url, async (c) =>
    (
      await c.query(
        `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
           FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
      )
    ).rows,
  );
  expect(columns).toEqual([
    { column_name: 'id', data_type: 'character varying', len: 36, is_nullable: 'NO', column_default: null },
    { column_name: 'checksum', data_type: 'character varying', len: 64, is_nullable: 'NO', column_default: null },
    { column_name: 'finished_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
    { column_name: 'migration_name', data_type: 'character varying', len: 255, is_nullable: 'NO', column_default: null },
    { column_name: 'logs', data_type: 'text', len: null, is_nullable: 'YES', column_default: null },
    { column_name: 'rolled_back_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'YES', column_default: null },
    { column_name: 'started_at', data_type: 'timestamp with time zone', len: null, is_nullable: 'NO', column_default: 'now()' },
    { column_name: 'applied_steps_count', data_type: 'integer', len: null, is_nullable: 'NO', column_default: '0' },
  ]);
  expect(PRISMA_MIGRATIONS_TABLE_DDL).toContain('CREATE TABLE _prisma_migrations');
});

it('a second run applies nothing', async () => {
  await applyMigrations(db.url, MIGRATIONS_DIR, silent);
  const before = await rows(db.url);
  expect(await applyMigrations(db.url, MIGRATIONS_DIR, silent)).toEqual([]);
  expect(await rows(db.url)).toEqual(before);
});

it('keeps $$ bodies intact: the whole file is one query', async () => {
  const dir = tempDir({
    '20990101000000_function': `CREATE FUNCTION tm_probe() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1; RETURN 42;
END;
$$;
CREATE TABLE tm_probe_table (id int);
`,
  });
  await applyMigrations(db.url, dir, silent);
  expect(await withClient(db.url, async (c) => (await c.query('SELECT tm_probe() AS v')).rows[0].v)).toBe(42);
});

it('a failing migration leaves an unfinished row with logs, and the next run refuses (P3009)', async () => {
  const broken = '20990101000000_broken';
  const later = '20990102000000_later';
  const dir = tempDir({
    [broken]: 'CREATE TABLE tm_half_done (id int);\nSELECT * FROM tm_does_not_exist;\n',
  });

  const first = applyMigrations(db.url, dir, silent);
  await expect(first).rejects.toBeInstanceOf(MigrationError);
  await expect(first).rejects.toMatchObject({ code: 'P3018', migrationName: broken });

  const failed = (await rows(db.url)).find((r) => r.migration_name === broken)!;
  expect(failed.finished_at).toBeNull();
  expect(failed.rolled_back_at).toBeNull();
  expect(failed.applied_steps_count).toBe(0);
  expect(failed.checksum).toBe(sha256OfFile(dir, broken));
  expect(failed.logs).toContain(`Migration name: ${broken}`);
  expect(failed.logs).toContain('Database error code: 42P01');
  expect(failed.logs).toContain('relation "tm_does_not_exist" does not exist');
  // One multi-statement query runs as one implicit transaction: nothing of the file survives.
  expect(await tableExists(db.url, 'tm_half_done')).toBe(false);

  // Refuses even though there is a new, valid migration after it.
  mkdirSync(path.join(dir, later));
  writeFileSync(path.join(dir, later, 'migration.sql'), 'CREATE TABLE tm_later (id int);\n');
  const second = applyMigrations(db.url, dir, silent);
  await expect(second).rejects.toMatchObject({ code: 'P3009', migrationName: broken });
  await expect(second).rejects.toThrow(`The \`${broken}\` migration started at`);
  await expect(second).rejects.toThrow('tm_does_not_exist');
  expect(await tableExists(db.url, 'tm_later')).toBe(false);

  // What `prisma migrate resolve --rolled-back` does; then a fixed file is applied again.
  await withClient(db.url, (c) => c.query('UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = $1', [broken]));
  writeFileSync(path.join(dir, broken, 'migration.sql'), 'CREATE TABLE tm_half_done (id int);\n');
  expect(await applyMigrations(db.url, dir, silent)).toEqual([broken, later]);
  const history = (await rows(db.url)).filter((r) => r.migration_name === broken);
  expect(history).toHaveLength(2);
  expect(history.filter((r) => r.finished_at !== null && r.rolled_back_at === null)).toHaveLength(1);
});

it('the CLI exits non-zero and names the failed migration', async () => {
  const broken = '20990101000000_broken';
  const dir = tempDir({ [broken]: 'SELECT * FROM tm_does_not_exist;\n' });
  const run = () =>
    spawnSync(process.execPath, [require.resolve('ts-node/dist/bin.js'), 'scripts/migrate.ts', '--dir', dir], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url },
      encoding: 'utf8',
    });

  const first = run();
  expect(first.status).not.toBe(0);
  expect(first.stderr).toContain('P3018');
  expect(first.stderr).toContain(broken);

  const second = run();
  expect(second.status).not.toBe(0);
  expect(second.stderr).toContain('P3009');
  expect(second.stderr).toContain(`The \`${broken}\` migration started at`);
});

it('warns, and does not re-apply, when an applied migration file was edited', async () => {
  const name = '20990101000000_edited';
  const dir = tempDir({ [name]: 'CREATE TABLE tm_edited (id int);\n' });
  await applyMigrations(db.url, dir, silent);
  writeFileSync(path.join(dir, name, 'migration.sql'), 'CREATE TABLE tm_edited (id bigint);\n');

  const lines: string[] = [];
  expect(await applyMigrations(db.url, dir, (l) => lines.push(l))).toEqual([]);
  expect(lines).toEqual([expect.stringContaining(`Warning: migration \`${name}\` was modified after it was applied`)]);
});

it('two concurrent runs apply each migration exactly once (advisory lock)', async () => {
  // A slow migration keeps the first run inside the lock while the second one starts.
  const dir = tempDir({ '20990101000000_slow': 'SELECT pg_sleep(1);\nCREATE TABLE tm_slow (id int);\n' });
  const expected = [...onDisk, '20990101000000_slow'];

  const [a, b] = await Promise.all([applyMigrations(db.url, dir, silent), applyMigrations(db.url, dir, silent)]);

  expect([a, b].sort((x, y) => y.length - x.length)).toEqual([expected, []]);
  const recorded = await rows(db.url);
  expect(recorded.map((r) => r.migration_name)).toEqual(expected);
  expect(recorded.every((r) => r.finished_at !== null)).toBe(true);
});
