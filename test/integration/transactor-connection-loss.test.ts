import { Transactor, type Database } from '@tokenmeter/db';
import { openTestDatabase } from '../helpers/tokenmeter-db';

/**
 * A Postgres restart drops every connection. One held by a unit of work between two statements
 * used to emit 'error' with nobody listening and crash the process (found by
 * `npm run chaos:postgres-restart`); it must fail the unit instead, and the pool must go on.
 */
describe('Transactor, connection lost between statements', () => {
  let db: Database;
  let admin: Database;
  beforeAll(() => {
    db = openTestDatabase();
    admin = openTestDatabase();
  });
  afterAll(async () => {
    await db.close();
    await admin.close();
  });

  it('fails the unit, discards the client, and the pool keeps working', async () => {
    const transactor = new Transactor(db.pool);
    const unit = transactor.run(async (client) => {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await admin.pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      // The FATAL message and the socket's end arrive while no statement of ours is running.
      await new Promise((r) => setTimeout(r, 300));
      await client.query('SELECT 1');
    });
    await expect(unit).rejects.toThrow();
    const again = await transactor.run(async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0].one);
    expect(again).toBe(1);
  });
});
