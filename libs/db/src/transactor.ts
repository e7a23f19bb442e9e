import type { Pool, PoolClient } from 'pg';
import { pooledClientByPid, prismaOf } from './database';
import { Prisma, type PrismaClient } from './generated/prisma/client';

/** Anything that runs a query: the pool (autocommit) or a client inside a transaction. */
export type Queryable = Pick<Pool | PoolClient, 'query'>;

/** The Prisma client of a Transactor unit, or the pool's for autocommit. */
export type PrismaQueryable = PrismaClient | Prisma.TransactionClient;

/** The Prisma transaction of each unit in flight, by the unit's pg client. */
const prismaByUnitClient = new WeakMap<object, Prisma.TransactionClient>();

/**
 * For a repository method on Prisma that takes the usual `q: Queryable = this.pool`: the pool's
 * Prisma client for autocommit, the unit's Prisma transaction when `q` is a Transactor unit's client.
 * Any other pg client (a pgTransaction's) is refused: its Prisma statements would silently
 * autocommit outside the transaction the caller meant.
 */
export function prismaFor(pool: Pool, q: Queryable): PrismaQueryable {
  if (q === pool) return prismaOf(pool);
  const tx = prismaByUnitClient.get(q);
  if (!tx) throw new Error('a Prisma repository was given a pg client that is not a Transactor unit');
  return tx;
}

/** setTimeout's ceiling: a unit (a reprice of a month) is never cut short by Prisma's default 5 s. */
const NO_LIMIT_MS = 2 ** 31 - 1;

class Rollback<T> {
  constructor(readonly result: T) {}
}

/**
 * Runs a unit of work in one transaction. Repositories take an optional Queryable, so a service
 * can make a write and its audit entry commit or roll back together.
 *
 * The transaction is a Prisma interactive transaction on the shared pool; the unit gets the pg
 * client holding it (found by backend pid), so the set-based repositories' pg statements and the
 * CRUD repositories' Prisma calls (prismaFor) run in the same transaction on the same connection.
 * A connection lost mid-unit cannot crash the process: the adapter listens for the client's
 * 'error' for the unit's life, and pg-pool discards a client that lost its connection on release.
 */
export class Transactor {
  constructor(private readonly pool: Pool) {}

  async run<T>(work: (q: PoolClient) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
    return this.runWithOutcome(async (client) => ({ result: await work(client), commit: true }), options);
  }

  /** Like run, but the unit decides whether to commit (`commit: false` rolls back, e.g. a dry run). */
  async runWithOutcome<T>(
    work: (q: PoolClient) => Promise<{ result: T; commit: boolean }>,
    options: { readOnly?: boolean } = {},
  ): Promise<T> {
    try {
      return await prismaOf(this.pool).$transaction(
        async (tx) => {
          // A read-only unit (a dry run) sees one consistent snapshot from start to end.
          if (options.readOnly) await tx.$executeRawUnsafe('SET TRANSACTION READ ONLY');
          const [{ pid }] = await tx.$queryRaw<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
          const client = pooledClientByPid(this.pool, pid);
          if (!client) throw new Error(`no pooled pg client for backend ${pid}`);
          prismaByUnitClient.set(client, tx);
          try {
            const { result, commit } = await work(client);
            if (!commit) throw new Rollback(result);
            return result;
          } finally {
            prismaByUnitClient.delete(client);
          }
        },
        {
          isolationLevel: options.readOnly ? Prisma.TransactionIsolationLevel.RepeatableRead : undefined,
          maxWait: NO_LIMIT_MS,
          timeout: NO_LIMIT_MS,
        },
      );
    } catch (err) {
      if (err instanceof Rollback) return err.result as T;
      throw err;
    }
  }
}

/**
 * A pg-only transaction for the set-based units that never touch Prisma (the ingest batch's COPY,
 * the invoice close's claims, the price book snapshot): BEGIN/COMMIT on a pool client, errors
 * exactly as pg raises them, which the ingest retry policy classifies.
 */
export async function pgTransaction<T>(
  pool: Pool,
  work: (q: PoolClient) => Promise<{ result: T; commit: boolean }>,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  // pg-pool listens for a client's 'error' only while it is idle in the pool. A connection
  // lost while the unit holds it between statements (a database restart while the work is
  // computing) emits 'error' with nobody listening, which would crash the process. Listen for
  // the unit's whole life: the statement in flight or the next one fails, the caller's retry
  // policy takes over, and the broken client is discarded instead of going back to the pool.
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    // A read-only unit sees one consistent snapshot from start to end.
    await client.query(options.readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
    const { result, commit } = await work(client);
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken ??= rollbackErr));
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** Postgres unique_violation: the caller turns it into a domain ConflictError with a clear message. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23505';
}
