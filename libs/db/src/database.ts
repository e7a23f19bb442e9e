import { Pool, type PoolClient } from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

// No pg type parsers are installed: BIGINT and NUMERIC come back as strings from the repositories'
// pg statements, as pg returns them by default, which is what money (exact decimals) and token sums
// (past 2^53 in long rollups) need. Prisma's adapter parses per query and does not change that.

export type Database = { pool: Pool; prisma: PrismaClient; close(): Promise<void> };

interface PoolState {
  prisma: PrismaClient;
  /** The pool's connected clients by backend pid: a Prisma transaction finds its pg client here. */
  clientsByPid: Map<number, PoolClient>;
}

const states = new WeakMap<Pool, PoolState>();

/**
 * One pg pool per process and database server, shared by the Prisma client (through
 * @prisma/adapter-pg: the single-row CRUD repositories) and by the repositories' pg statements
 * (COPY, set-based writes, streamed exports). A process with DATABASE_READ_URL has a second one,
 * on the replica (READ_DATABASE); `applicationName` tells them apart in pg_stat_activity.
 */
export function createDatabase(databaseUrl: string, poolSize = 10, applicationName = 'tokenmeter'): Database {
  const pool = new Pool({ connectionString: databaseUrl, max: poolSize, application_name: applicationName });
  // An idle client losing its connection (database restart) must not crash the process;
  // the next query fails and the caller's retry policy takes over.
  pool.on('error', () => undefined);
  const clientsByPid = new Map<number, PoolClient>();
  pool.on('connect', (client) => clientsByPid.set(backendPid(client), client));
  pool.on('remove', (client) => clientsByPid.delete(backendPid(client)));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: false }) });
  states.set(pool, { prisma, clientsByPid });
  return {
    pool,
    prisma,
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

/** The Prisma client sharing `pool` (the repositories are built from the pool alone). */
export function prismaOf(pool: Pool): PrismaClient {
  return stateOf(pool).prisma;
}

/** The pool's client connected to backend `pid` (see Transactor). */
export function pooledClientByPid(pool: Pool, pid: number): PoolClient | undefined {
  return stateOf(pool).clientsByPid.get(pid);
}

function stateOf(pool: Pool): PoolState {
  const state = states.get(pool);
  if (!state) throw new Error('this pg pool was not made by createDatabase: it has no Prisma client');
  return state;
}

/** pg sets processID from the server's BackendKeyData before the client reports connected. */
function backendPid(client: PoolClient): number {
  return (client as unknown as { processID: number }).processID;
}
