import { Pool, types } from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

// BIGINT and NUMERIC come back from pg as strings by default; keep it that way for money
// (exact decimals) and token sums (which can exceed 2^53 in long rollups).
void types;

export type Database = { pool: Pool; prisma: PrismaClient; close(): Promise<void> };

/**
 * One pg pool per process, shared by Prisma (through @prisma/adapter-pg) and by the few
 * hot-path statements that Prisma cannot express efficiently (set-based inserts with unnest).
 */
export function createDatabase(databaseUrl: string, poolSize = 10): Database {
  const pool = new Pool({ connectionString: databaseUrl, max: poolSize, application_name: 'tokenmeter' });
  // An idle client losing its connection (database restart) must not crash the process;
  // the next query fails and the caller's retry policy takes over.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: false }) });
  return {
    pool,
    prisma,
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
