import type { Pool } from 'pg';
import type { InvoiceStatus } from '@tokenmeter/billing';
import type { Queryable } from './transactor';

/**
 * The monthly partitions of usage_events (docs/operations.md, "Partitions and retention"): making
 * them, and what retention needs to detach and drop one. One partition per UTC month, named
 * usage_events_pYYYY_MM; the SQL function usage_events_ensure_partition (migration
 * partitioned_usage_events) is the one place a month is made or put back.
 */

/** One month's table: attached, half-detached (an interrupted DETACH CONCURRENTLY), or detached. */
export interface EventPartitionRecord {
  /** 'YYYY-MM', the UTC month its rows are in. */
  period: string;
  table: string;
  state: 'attached' | 'detach_pending' | 'detached';
}

/** What decides whether a month of raw events may be dropped (libs/billing retention.ts). */
export interface EventPartitionState {
  events: number;
  /** Events no invoice has claimed: late usage not billed yet, or unpriced usage waiting for a price. */
  unclaimedEvents: number;
  /** The invoices (of any period) that claimed an event of the month: each distinct (period, status) once. */
  claimingInvoices: { period: string; status: InvoiceStatus }[];
  /** Every status among the invoices of the month's own period. */
  periodInvoiceStatuses: InvoiceStatus[];
  /** Accounts with events in the month and no invoice of the month. */
  accountsWithoutInvoice: number;
}

const PARTITION_NAME = /^usage_events_p(\d{4})_(\d{2})$/;

/** Postgres's refusal of a row whose occurred_at has no partition (SQLSTATE check_violation). */
export function isMissingEventPartition(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return code === '23514' && typeof message === 'string' && message.startsWith('no partition of relation "usage_events"');
}

/** The UTC month starts of `instants`, each once, oldest first. */
export function monthStarts(instants: Iterable<Date>): Date[] {
  const starts = new Set<number>();
  for (const at of instants) starts.add(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  return [...starts].sort((a, b) => a - b).map((ms) => new Date(ms));
}

/**
 * Makes sure every month of `instants` has its partition: one autocommit statement per month, so
 * each month's locks (an advisory lock per month, SHARE UPDATE EXCLUSIVE on usage_events while it
 * attaches) are held for that month only. Returns what each month needed ('exists', 'created',
 * 'reattached'), by month start.
 */
export async function ensureEventPartitions(q: Queryable, instants: Iterable<Date>): Promise<Map<string, string>> {
  const done = new Map<string, string>();
  for (const start of monthStarts(instants)) {
    const { rows } = await q.query<{ outcome: string }>('SELECT usage_events_ensure_partition($1) AS outcome', [start.toISOString()]);
    done.set(start.toISOString(), rows[0].outcome);
  }
  return done;
}

export class UsageEventPartitionsRepository {
  constructor(private readonly pool: Pool) {}

  /** Every usage_events_pYYYY_MM table, oldest first, whether attached or not. */
  async listPartitions(): Promise<EventPartitionRecord[]> {
    const { rows } = await this.pool.query<{ table: string; attached: boolean | null; pending: boolean | null }>(
      `SELECT c.relname AS table, i.inhrelid IS NOT NULL AS attached, i.inhdetachpending AS pending
       FROM pg_class c
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'usage_events'::regclass
       WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace AND c.relname ~ '^usage_events_p[0-9]{4}_[0-9]{2}$'
       ORDER BY c.relname`,
    );
    return rows.map((r) => {
      const [, year, month] = PARTITION_NAME.exec(r.table)!;
      const state = !r.attached ? 'detached' : r.pending ? 'detach_pending' : 'attached';
      return { period: `${year}-${month}`, table: r.table, state };
    });
  }

  /** The month's events and the invoices they are on, read from its table (attached or not). */
  async getPartitionState(table: string, period: string, q: Queryable = this.pool): Promise<EventPartitionState> {
    const t = partitionTable(table);
    const { rows } = await q.query<{
      events: string;
      unclaimed: string;
      claiming: { period: string; status: InvoiceStatus }[];
      of_period: InvoiceStatus[];
      without_invoice: string;
    }>(
      `WITH claims AS (SELECT DISTINCT invoice_id FROM ${t} WHERE invoice_id IS NOT NULL)
       SELECT (SELECT count(*) FROM ${t}) AS events,
              (SELECT count(*) FROM ${t} WHERE invoice_id IS NULL) AS unclaimed,
              (SELECT coalesce(json_agg(DISTINCT jsonb_build_object('period', i.period, 'status', i.status)), '[]')
               FROM invoices i JOIN claims c ON c.invoice_id = i.id) AS claiming,
              (SELECT coalesce(array_agg(DISTINCT i.status), '{}') FROM invoices i WHERE i.period = $1) AS of_period,
              (SELECT count(*) FROM (SELECT DISTINCT account_id FROM ${t}) a
               WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.account_id = a.account_id AND i.period = $1)) AS without_invoice`,
      [period],
    );
    const r = rows[0];
    return {
      events: Number(r.events),
      unclaimedEvents: Number(r.unclaimed),
      claimingInvoices: r.claiming,
      periodInvoiceStatuses: r.of_period,
      accountsWithoutInvoice: Number(r.without_invoice),
    };
  }

  /**
   * DETACH PARTITION ... CONCURRENTLY: takes only SHARE UPDATE EXCLUSIVE on usage_events, so
   * ingest and reads carry on; it waits for the transactions that may still see the partition.
   * Cannot run inside a transaction, hence the pool. From its first step on, no new row can go
   * into the month's table: an event for that month makes ingest put the month back
   * (usage_events_ensure_partition), which waits for retention's per-month lock.
   */
  async detachConcurrently(table: string): Promise<void> {
    await this.pool.query(`ALTER TABLE usage_events DETACH PARTITION ${partitionTable(table)} CONCURRENTLY`);
  }

  /** Completes a DETACH CONCURRENTLY that was interrupted (state 'detach_pending'). */
  async finalizeDetach(table: string): Promise<void> {
    await this.pool.query(`ALTER TABLE usage_events DETACH PARTITION ${partitionTable(table)} FINALIZE`);
  }

  /**
   * Takes the month's partition lock (the one usage_events_ensure_partition takes) for the rest of
   * `q`'s transaction, then says whether `table` is still detached: ingest may have put it back.
   */
  async lockDetachedMonth(q: Queryable, table: string, monthStart: Date): Promise<boolean> {
    await q.query('SELECT usage_events_lock_month($1)', [monthStart.toISOString()]);
    const { rows } = await q.query<{ detached: boolean }>(
      `SELECT NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = $1::regclass AND inhparent = 'usage_events'::regclass) AS detached`,
      [table],
    );
    return rows[0].detached;
  }

  /** Drops a detached month's table (never an attached one: DROP refuses nothing, so the caller checked). */
  async dropDetached(q: Queryable, table: string): Promise<void> {
    await q.query(`DROP TABLE ${partitionTable(table)}`);
  }
}

/** A month table's name, checked and quoted: table names cannot be bind parameters. */
function partitionTable(table: string): string {
  if (!PARTITION_NAME.test(table)) throw new Error(`not a usage_events partition: ${table}`);
  return `"${table}"`;
}
