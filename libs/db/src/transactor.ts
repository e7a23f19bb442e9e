import type { Pool, PoolClient } from 'pg';

/** Anything that runs a query: the pool (autocommit) or a client inside a transaction. */
export type Queryable = Pick<Pool | PoolClient, 'query'>;

/**
 * Runs a unit of work in one transaction. Repositories take an optional Queryable, so a
 * service can make a write and its audit entry commit or roll back together.
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
    const client = await this.pool.connect();
    // pg-pool listens for a client's 'error' only while it is idle in the pool. A connection
    // lost while the unit holds it between statements (a database restart while the work is
    // computing) emits 'error' with nobody listening, which would crash the process. Listen for
    // the unit's whole life: the statement in flight or the next one fails, the caller's retry
    // policy takes over, and the broken client is discarded instead of going back to the pool.
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      // A read-only unit (a dry run) sees one consistent snapshot from start to end.
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
}

/** Postgres unique_violation: the caller turns it into a domain ConflictError with a clear message. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23505';
}
