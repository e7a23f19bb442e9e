/**
 * Holds the migrated schema to the distribution plan of docs/scaling.md ("Beyond one primary"):
 * the placement of every table in libs/db/src/distribution.ts. Read from pg_catalog of the test
 * database, which scripts/test.sh has just migrated:
 *
 * - every table is placed (distributed / reference / local), and every placed table exists;
 * - a distributed table has its distribution column, or a `columnToAdd` note (and not both);
 * - every primary key and unique index of a distributed table has the distribution column among
 *   its key columns (Citus enforces uniqueness per shard only), or is a listed exception;
 * - foreign keys go where Citus can enforce them: to a reference table, or between distributed
 *   tables on the distribution column; reference tables point only at reference tables, local
 *   tables never at distributed ones. Listed exceptions aside.
 *
 * An exception that no longer matches anything fails too, so the list stays the true work list.
 */
import type { Client } from 'pg';
import { TABLE_PLACEMENT, type KeyColumns, type TablePlacement } from '@tokenmeter/db/distribution';
import { TEST_DATABASE_URL, withClient } from '../helpers/db';

jest.setTimeout(60_000);

interface Table {
  name: string;
  columns: string[];
}
interface UniqueKey {
  table: string;
  index: string;
  columns: string[];
}
interface ForeignKey {
  table: string;
  name: string;
  columns: string[];
  target: string;
  targetColumns: string[];
}

// Schema-qualified unless in public, so a table in another schema can never match a placement.
const REL_NAME = `CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END`;
const USER_TABLE = `c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;

async function readSchema(db: Client): Promise<{ tables: Table[]; uniqueKeys: UniqueKey[]; foreignKeys: ForeignKey[] }> {
  const tables = await db.query<Table>(`
    SELECT ${REL_NAME} AS name,
           coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{}') AS columns
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE ${USER_TABLE}
    GROUP BY 1 ORDER BY 1`);
  // Key columns only (not INCLUDE columns); an expression is listed as its text, so it never counts as the column.
  const uniqueKeys = await db.query<UniqueKey>(`
    SELECT ${REL_NAME} AS table, i.relname AS index,
           array_agg(coalesce(a.attname::text, '(' || pg_get_indexdef(x.indexrelid, k.pos::int, true) || ')') ORDER BY k.pos) AS columns
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_class i ON i.oid = x.indexrelid
    CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum AND k.attnum > 0
    WHERE x.indisunique AND k.pos <= x.indnkeyatts AND ${USER_TABLE}
    GROUP BY 1, 2 ORDER BY 1, 2`);
  const foreignKeys = await db.query<ForeignKey>(`
    SELECT ${REL_NAME} AS table, f.conname AS name,
           (SELECT array_agg(a.attname::text ORDER BY k.pos) FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, pos)
              JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum) AS columns,
           (SELECT CASE WHEN tn.nspname = 'public' THEN t.relname ELSE tn.nspname || '.' || t.relname END
              FROM pg_class t JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE t.oid = f.confrelid) AS target,
           (SELECT array_agg(a.attname::text ORDER BY k.pos) FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, pos)
              JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum) AS "targetColumns"
    FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE f.contype = 'f' AND ${USER_TABLE}
    ORDER BY 1, 2`);
  return { tables: tables.rows, uniqueKeys: uniqueKeys.rows, foreignKeys: foreignKeys.rows };
}

const sameColumns = (a: KeyColumns, b: KeyColumns) => a.length === b.length && a.every((c, i) => c === b[i]);
const list = (columns: KeyColumns) => `(${columns.join(', ')})`;

/** Every way the schema departs from the placement; empty when it follows it. */
async function distributionViolations(db: Client, placement: Readonly<Record<string, TablePlacement>>): Promise<string[]> {
  const { tables, uniqueKeys, foreignKeys } = await readSchema(db);
  const violations: string[] = [];
  const byName = new Map(tables.map((t) => [t.name, t]));

  for (const t of tables) {
    if (!placement[t.name]) violations.push(`${t.name}: not placed in libs/db/src/distribution.ts (distributed by account_id, reference or local?)`);
  }
  for (const name of Object.keys(placement)) {
    if (!byName.has(name)) violations.push(`${name}: placed in libs/db/src/distribution.ts but no such table`);
  }

  const usedUniqueExceptions = new Set<string>();
  const usedForeignExceptions = new Set<string>();
  for (const [name, p] of Object.entries(placement)) {
    const table = byName.get(name);
    if (!table || p.kind !== 'distributed') continue;
    const hasColumn = table.columns.includes(p.column);
    if (!hasColumn && !p.columnToAdd) violations.push(`${name}: distributed by ${p.column}, which it does not have (add it, or say why in columnToAdd)`);
    if (hasColumn && p.columnToAdd) violations.push(`${name}: has ${p.column} now; drop its columnToAdd note`);
  }

  for (const key of uniqueKeys) {
    const p = placement[key.table];
    if (p?.kind !== 'distributed' || key.columns.includes(p.column)) continue;
    const exception = p.uniqueKeyExceptions?.find((e) => sameColumns(e.columns, key.columns));
    if (exception) usedUniqueExceptions.add(`${key.table} ${list(exception.columns)}`);
    else violations.push(`${key.table}: unique ${key.index} ${list(key.columns)} lacks the distribution column ${p.column} and is not a listed exception`);
  }

  for (const fk of foreignKeys) {
    const from = placement[fk.table];
    const to = placement[fk.target];
    if (!from || !to) continue; // reported above as not placed
    let problem: string | undefined;
    if (from.kind === 'reference' && to.kind !== 'reference') problem = `a reference table may point only at reference tables, not at ${to.kind} ${fk.target}`;
    if (from.kind === 'local' && to.kind === 'distributed') problem = `a local table may not point at distributed ${fk.target}`;
    if (from.kind === 'distributed' && to.kind === 'local') problem = `a distributed table may not point at local ${fk.target}`;
    if (from.kind === 'distributed' && to.kind === 'distributed') {
      const i = fk.columns.indexOf(from.column);
      if (i < 0 || fk.targetColumns[i] !== to.column) problem = `between distributed tables it must map ${from.column} to ${fk.target}.${to.column}`;
    }
    if (!problem) continue;
    const exception = from.kind === 'distributed' ? from.foreignKeyExceptions?.find((e) => sameColumns(e.columns, fk.columns)) : undefined;
    if (exception) usedForeignExceptions.add(`${fk.table} ${list(exception.columns)}`);
    else violations.push(`${fk.table}: foreign key ${fk.name} ${list(fk.columns)} -> ${fk.target}: ${problem}, and it is not a listed exception`);
  }

  for (const [name, p] of Object.entries(placement)) {
    if (p.kind !== 'distributed') continue;
    for (const e of p.uniqueKeyExceptions ?? []) {
      if (!usedUniqueExceptions.has(`${name} ${list(e.columns)}`)) violations.push(`${name}: unique key exception ${list(e.columns)} matches no key lacking ${p.column}; remove it`);
    }
    for (const e of p.foreignKeyExceptions ?? []) {
      if (!usedForeignExceptions.has(`${name} ${list(e.columns)}`)) violations.push(`${name}: foreign key exception ${list(e.columns)} matches no offending foreign key; remove it`);
    }
  }
  return violations;
}

/** Runs `fn` in a transaction that is always rolled back, so probe DDL never outlives the test. */
const inRolledBackTransaction = <T>(fn: (db: Client) => Promise<T>) =>
  withClient(TEST_DATABASE_URL, async (db) => {
    await db.query('BEGIN');
    try {
      return await fn(db);
    } finally {
      await db.query('ROLLBACK');
    }
  });

describe('the schema follows the distribution plan (docs/scaling.md)', () => {
  it('every table is placed, and distributed tables key on account_id or are listed exceptions', async () => {
    const violations = await withClient(TEST_DATABASE_URL, (db) => distributionViolations(db, TABLE_PLACEMENT));
    expect(violations).toEqual([]);
  });

  // Guards the guard: each rule must notice a schema that breaks it.
  it('notices a table nobody placed', async () => {
    const violations = await inRolledBackTransaction(async (db) => {
      await db.query('CREATE TABLE distribution_probe (id bigint PRIMARY KEY)');
      return distributionViolations(db, TABLE_PLACEMENT);
    });
    expect(violations).toEqual([expect.stringMatching(/^distribution_probe: not placed/)]);
  });

  it('notices a unique index on a distributed table without account_id, and accepts one with it', async () => {
    const violations = await inRolledBackTransaction(async (db) => {
      // The probe runs on whatever rows earlier tests left; emptied here, inside the rolled-back transaction.
      await db.query('DELETE FROM budgets');
      await db.query('DELETE FROM usage_hourly');
      await db.query('CREATE UNIQUE INDEX distribution_probe_bad ON budgets (model, created_at)');
      await db.query('CREATE UNIQUE INDEX distribution_probe_ok ON budgets (model, created_at, account_id)');
      await db.query('ALTER TABLE usage_hourly ADD CONSTRAINT distribution_probe_key UNIQUE (hour, model, api_key_id)');
      return distributionViolations(db, TABLE_PLACEMENT);
    });
    expect(violations.sort()).toEqual([
      expect.stringMatching(/^budgets: unique distribution_probe_bad \(model, created_at\) lacks the distribution column account_id/),
      expect.stringMatching(/^usage_hourly: unique distribution_probe_key \(hour, model, api_key_id\) lacks/),
    ]);
  });

  it('notices a foreign key Citus could not enforce', async () => {
    const violations = await inRolledBackTransaction(async (db) => {
      await db.query('ALTER TABLE api_keys ADD CONSTRAINT distribution_probe_fk FOREIGN KEY (account_id) REFERENCES accounts (id)');
      return distributionViolations(db, TABLE_PLACEMENT);
    });
    expect(violations).toEqual([expect.stringMatching(/^api_keys: foreign key distribution_probe_fk \(account_id\) -> accounts: a local table/)]);
  });

  it('notices placements and exceptions that no longer match the schema', async () => {
    const stale: Record<string, TablePlacement> = {
      ...TABLE_PLACEMENT,
      no_such_table: { kind: 'local', why: 'probe' },
      usage_hourly: {
        kind: 'distributed',
        column: 'account_id',
        why: 'probe',
        columnToAdd: 'probe',
        uniqueKeyExceptions: [{ columns: ['hour'], why: 'probe' }],
      },
    };
    const violations = await withClient(TEST_DATABASE_URL, (db) => distributionViolations(db, stale));
    expect(violations.sort()).toEqual([
      expect.stringMatching(/^no_such_table: placed .* but no such table/),
      expect.stringMatching(/^usage_hourly: has account_id now; drop its columnToAdd note/),
      expect.stringMatching(/^usage_hourly: unique key exception \(hour\) matches no key/),
    ]);
  });
});
