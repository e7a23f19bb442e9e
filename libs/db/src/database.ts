import { Pool } from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

// No pg type parsers are installed: BIGINT and NUMERIC come back as strings, as pg returns them by
// default, which is what money (exact decimals) and token sums (past 2^53 in long rollups) need.

export type Database = { pool: Pool; prisma: PrismaClient; close(): Promise<void> };

/**
 * One pg pool per process, shared by the Prisma client (through @prisma/adapter-pg) and by the
 * repositories' pg statements (COPY, set-based writes, streamed exports).
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
