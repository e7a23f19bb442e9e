import { AuditLogRepository, EventReadRepository, InvoicesRepository, PriceBookRepository, UsageEventClaimsRepository, type Database } from '@tokenmeter/db';
import { openTestDatabase, resetDatabase } from '../helpers/tokenmeter-db';

/**
 * The admin lists that select `id::text` (audit log, rejected events, event conflicts) are newest
 * first by the NUMBER: ordering by the output column would sort "9" above "10", so the newest
 * entry vanished from the first page once there were ten, and keyset pages (id < cursor, compared
 * as numbers) skipped and repeated rows. resetDatabase restarts the ids at 1, so 12 rows cross 9 -> 10.
 */
describe('admin lists: newest first by id, keyset pages without gaps', () => {
  let db: Database;
  const N = 12;
  const descending = Array.from({ length: N }, (_, i) => String(N - i));

  beforeAll(async () => {
    db = openTestDatabase();
    await resetDatabase(db);
  });
  afterAll(() => db.close());

  /** Every id, page after page of `size`, following the cursor as the routes do. */
  async function walk(page: (beforeId: string | undefined, limit: number) => Promise<{ id: string }[]>, size = 5): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const rows = await page(cursor, size);
      seen.push(...rows.map((r) => r.id));
      if (rows.length < size) return seen;
      cursor = rows[rows.length - 1].id;
    }
  }

  it('audit log', async () => {
    const audit = new AuditLogRepository(db.pool);
    for (let i = 1; i <= N; i++) {
      await audit.append({ actorKeyId: null, action: 'test.order', targetType: 'test', targetId: `t${i}`, before: null, after: { i }, requestId: null });
    }
    expect((await audit.listEntries({ limit: 1 }))[0].targetId).toBe(`t${N}`);
    expect(await walk((beforeId, limit) => audit.listEntries({ beforeId, limit }))).toEqual(descending);
  });

  it('rejected events and event conflicts', async () => {
    for (let i = 1; i <= N; i++) {
      await db.pool.query(
        `INSERT INTO rejected_events (source, event_id, raw_payload, reason_code, reason) VALUES ('http', $1, '{}', 'schema', 'test')`,
        [`evt_r${i}`],
      );
      await db.pool.query(`INSERT INTO event_conflicts (event_id, existing_hash, payload_hash, raw_payload, source) VALUES ($1, 'a', $2, '{}', 'http')`, [
        `evt_c${i}`,
        `h${i}`,
      ]);
    }
    const events = new EventReadRepository(db.pool);
    expect(await walk((afterId, limit) => events.listRejectedEvents({}, limit, afterId))).toEqual(descending);
    expect(await walk((afterId, limit) => events.listEventConflicts({}, limit, afterId))).toEqual(descending);
  });

  it('invoice lines in the order they were written (the billing order), past ten of them', async () => {
    await db.pool.query(`INSERT INTO accounts (id) VALUES ('acct_order')`);
    await db.pool.query(
      `INSERT INTO invoices (id, account_id, period, period_start, period_end, status, total_exact_usd, total_minor)
       VALUES ('inv_order', 'acct_order', '2026-11', '2026-11-01', '2026-12-01', 'draft', 0, 0)`,
    );
    for (let i = 1; i <= N; i++) {
      await db.pool.query(
        `INSERT INTO invoice_lines (invoice_id, line_key, model, token_type, service_period, quantity, unit_price_per_mtok,
           amount_exact_usd, amount_minor, description)
         VALUES ('inv_order', $1, 'm', 'input', '2026-11', 1, 1, 0, 0, $1)`,
        [`line_${i}`],
      );
    }
    const lines = await new InvoicesRepository(db.pool, new UsageEventClaimsRepository(db.pool)).listLines('inv_order');
    expect(lines.map((l) => l.lineKey)).toEqual(Array.from({ length: N }, (_, i) => `line_${i + 1}`));
  });

  it("the price book's overrides by id as a number, past ten of them", async () => {
    await db.pool.query(`INSERT INTO accounts (id) VALUES ('acct_ovr') ON CONFLICT DO NOTHING`);
    for (let i = 1; i <= N; i++) {
      await db.pool.query(
        `INSERT INTO account_price_overrides (account_id, kind, discount_percent, effective_from) VALUES ('acct_ovr', 'discount', 10, $1)`,
        [new Date(Date.UTC(2026, 0, i))],
      );
    }
    const snapshot = await new PriceBookRepository(db.pool).loadSnapshot();
    expect(snapshot.overrides.map((o) => o.id)).toEqual(Array.from({ length: N }, (_, i) => String(i + 1)));
  });
});
