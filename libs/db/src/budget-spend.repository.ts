import type { Pool } from 'pg';
import { BUDGET_WINDOW_START_SQL } from '@tokenmeter/billing';
import type { Queryable } from './transactor';

/**
 * budget_windows and the inserts into budget_alerts (docs/limits.md, "The write path").
 *
 * A budget window's spend is the exact sum of the costs of the budget's events in that window:
 * the same costs, to the unit, that usage_hourly sums, added in the same transaction. Whoever
 * changes rollups (the ingest batch, reprice) calls addToBudgetWindows with what it changed, in
 * its own transaction; a budget's creation counts what the window holds so far (openWindows).
 * Both take the budgets lock, so each event is counted by exactly one of them.
 */

/**
 * The pg advisory lock key of budgets (any constant no other lock in this code base uses). Taken shared by every transaction that
 * changes rollups, exclusive by a budget's creation or change while it reads rollups.
 */
export const BUDGETS_LOCK_KEY = '7089066356223387251';

/**
 * Rows a source relation must have: one per (account, api key, model, UTC hour) with the change
 * of `cost_usd` in that hour (usage_hourly_staging, or a reprice's deltas).
 */
export type BudgetCostSource = string;

/**
 * Takes the budgets lock (shared) on a transaction's connection. Its own statement, run before the
 * statement reading budgets, so that statement's snapshot (READ COMMITTED takes one per statement)
 * sees any budget whose creation held the lock exclusively before us.
 */
export async function lockBudgetsShared(client: Queryable): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock_shared(${BUDGETS_LOCK_KEY})`);
}

/** Takes the budgets lock exclusively: in-flight ingest transactions finish first, new ones wait for us. */
export async function lockBudgetsExclusive(q: Queryable): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(${BUDGETS_LOCK_KEY})`);
}

/**
 * Adds `source`'s costs to the windows of every live budget they fall under, inserts one
 * budget_alerts row per threshold crossed (either way; the unique key makes it exactly once
 * per budget, window, threshold and direction), and NOTIFYs the new values. Call inside the
 * transaction that changed the rollups, after lockBudgetsShared. Returns how many alerts were new.
 */
export async function addToBudgetWindows(client: Queryable, source: BudgetCostSource): Promise<number> {
  const { rows } = await client.query<{ alerts: string }>(addToBudgetWindowsSql(source));
  return Number(rows[0].alerts);
}

// What one notification carries at most (Postgres refuses payloads of 8000 bytes or more): a line
// is ~100 bytes (budget id, epoch ms, an exact amount of up to ~40 digits, version).
const LINES_PER_NOTIFICATION = 60;

/**
 * The NOTIFYs of changed windows, from a relation `applied(budget_id, window_start, spend_usd, version)`.
 * Lines `budget_id window_start_ms spend_usd version` (docs/limits.md, "Notifications").
 */
const notifySpendSql = (applied: string) => `
  SELECT pg_notify('tokenmeter_budget_spend', string_agg(line, E'\\n')) FROM (
    SELECT budget_id || ' ' || (extract(epoch FROM window_start) * 1000)::bigint || ' ' || spend_usd::text || ' ' || version AS line,
      (row_number() OVER () - 1) / ${LINES_PER_NOTIFICATION} AS grp
    FROM ${applied}
  ) lines GROUP BY grp`;

/**
 * The crossing test, exactly and without division: spend has reached pct% of limit when
 * spend x 100 >= limit x pct (pct is DECIMAL(7,4), the amounts unconstrained numeric).
 */
const reached = (spend: string, limit: string, pct: string) => `(${spend} * 100 >= ${limit} * ${pct})`;

/** The alert inserts from `moves(budget_id, account_id, window_start, before_usd, spend_usd, limit_usd, thresholds)`. */
const insertAlertsSql = (moves: string) => `
  INSERT INTO budget_alerts (budget_id, account_id, window_start, threshold_pct, direction, spend_usd, limit_usd)
  SELECT m.budget_id, m.account_id, m.window_start, t.pct,
    CASE WHEN ${reached('m.spend_usd', 'm.limit_usd', 't.pct')} THEN 'up' ELSE 'down' END, m.spend_usd, m.limit_usd
  FROM ${moves} m CROSS JOIN LATERAL unnest(m.thresholds) AS t(pct)
  WHERE ${reached('m.before_usd', 'm.limit_usd', 't.pct')} <> ${reached('m.spend_usd', 'm.limit_usd', 't.pct')}
  ORDER BY 1, 3, 4
  ON CONFLICT (budget_id, window_start, threshold_pct, direction) DO NOTHING
  RETURNING id`;

// In (budget, window) order: the upsert's row locks serialise concurrent ingestors on a window, in
// one order, so each sees exactly the spend before and after its own delta and none deadlocks.
const addToBudgetWindowsSql = (source: string) => `
WITH delta AS (
  SELECT b.id AS budget_id, ${BUDGET_WINDOW_START_SQL('s.hour', 'b.time_window')} AS window_start, sum(s.cost_usd) AS amount
  FROM ${source} s
  JOIN budgets b ON b.account_id = s.account_id
  WHERE b.deleted_at IS NULL AND s.hour >= b.counts_from
    AND (b.api_key_id IS NULL OR b.api_key_id = s.api_key_id)
    AND (b.model IS NULL OR b.model = s.model)
  GROUP BY 1, 2
  HAVING sum(s.cost_usd) <> 0
), applied AS (
  INSERT INTO budget_windows AS w (budget_id, window_start, spend_usd)
  SELECT budget_id, window_start, amount FROM delta ORDER BY budget_id, window_start
  ON CONFLICT (budget_id, window_start) DO UPDATE SET
    previous_spend_usd = w.spend_usd, spend_usd = w.spend_usd + EXCLUDED.spend_usd, version = w.version + 1, updated_at = now()
  RETURNING w.budget_id, w.window_start, w.previous_spend_usd, w.spend_usd, w.version
), moves AS (
  -- Before and after come from the upsert's own row (previous_spend_usd is the value it replaced):
  -- joining applied back to delta let a planner without statistics on budgets pick a nested loop
  -- over both CTEs, 771 x 771 rows, 280 ms a chunk (measured with bench:write-path --budgets 1000).
  SELECT a.budget_id, b.account_id, a.window_start, a.previous_spend_usd AS before_usd, a.spend_usd, b.limit_usd, b.thresholds
  FROM applied a JOIN budgets b ON b.id = a.budget_id
), alerts AS (${insertAlertsSql('moves')}
), notified AS (${notifySpendSql('applied')}
)
SELECT (SELECT count(*) FROM alerts) AS alerts,
  (SELECT count(*) FROM notified) AS notifications,
  (SELECT count(*) FROM (SELECT pg_notify('tokenmeter_alerts', '') WHERE EXISTS (SELECT 1 FROM alerts)) n) AS woken`;

/** A budget's scope, as budget_windows' creation needs it. */
export interface BudgetScope {
  id: string;
  accountId: string;
  apiKeyId: string | null;
  model: string | null;
  window: string;
  countsFrom: Date;
}

/** One window of a budget, spend exact. */
export interface BudgetWindowRecord {
  budgetId: string;
  windowStart: Date;
  spendUsd: string;
  version: string;
}

/** A difference between a budget window and the rollups it is derived from (reconciliation). */
export interface BudgetDrift {
  budgetId: string;
  accountId: string;
  windowStart: Date;
  budgetSpendUsd: string;
  rollupSpendUsd: string;
  differenceUsd: string;
}

export class BudgetSpendRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * A new budget's windows from counts_from on, from the rollups so far; call in the creating
   * transaction after lockBudgetsExclusive, so no ingest transaction is half-way.
   */
  async openWindows(budget: BudgetScope, q: Queryable): Promise<BudgetWindowRecord[]> {
    const { rows } = await q.query(
      `WITH opened AS (
         INSERT INTO budget_windows (budget_id, window_start, spend_usd)
         SELECT $1, ${BUDGET_WINDOW_START_SQL('h.hour', '$5::text')}, sum(h.cost_usd)
         FROM usage_hourly h
         WHERE h.account_id = $2 AND h.hour >= $6
           AND ($3::text IS NULL OR h.api_key_id = $3) AND ($4::text IS NULL OR h.model = $4)
         GROUP BY 2
         HAVING sum(h.cost_usd) <> 0
         ORDER BY 2
         RETURNING budget_id, window_start, spend_usd, version
       ), notified AS (${notifySpendSql('opened')})
       SELECT budget_id, window_start, spend_usd::text, version::text, (SELECT count(*) FROM notified) AS n FROM opened`,
      [budget.id, budget.accountId, budget.apiKeyId, budget.model, budget.window, budget.countsFrom.toISOString()],
    );
    return rows.map(toWindowRecord);
  }

  /**
   * Alerts for thresholds the current spend has reached but no alert records yet: after a budget is
   * created, or its limit or thresholds changed (effective from now; a raised limit raises no
   * "down" alert, only a reprice does). Returns how many were new.
   */
  async alertReachedThresholds(budgetId: string, q: Queryable): Promise<number> {
    const { rows } = await q.query<{ alerts: string }>(
      `WITH moves AS (
         SELECT w.budget_id, b.account_id, w.window_start, 0::numeric AS before_usd, w.spend_usd, b.limit_usd, b.thresholds
         FROM budget_windows w JOIN budgets b ON b.id = w.budget_id
         WHERE w.budget_id = $1 AND b.deleted_at IS NULL
       ), alerts AS (${insertAlertsSql('moves')})
       SELECT (SELECT count(*) FROM alerts) AS alerts,
         (SELECT count(*) FROM (SELECT pg_notify('tokenmeter_alerts', '') WHERE EXISTS (SELECT 1 FROM alerts)) n) AS woken`,
      [budgetId],
    );
    return Number(rows[0].alerts);
  }

  /** Tells listeners (the authorize cache) that a budget was created, changed or deleted. */
  async notifyBudgetChanged(budgetId: string, q: Queryable): Promise<void> {
    await q.query(`SELECT pg_notify('tokenmeter_budgets', $1)`, [budgetId]);
  }

  /** The windows of some budgets starting at the given instants (the current ones), spend exact. */
  async windowsOf(keys: { budgetId: string; windowStart: Date }[], q: Queryable = this.pool): Promise<BudgetWindowRecord[]> {
    if (keys.length === 0) return [];
    const { rows } = await q.query(
      `SELECT w.budget_id, w.window_start, w.spend_usd::text, w.version::text
       FROM unnest($1::text[], $2::timestamptz[]) AS k(budget_id, window_start)
       JOIN budget_windows w ON w.budget_id = k.budget_id AND w.window_start = k.window_start`,
      [keys.map((k) => k.budgetId), keys.map((k) => k.windowStart.toISOString())],
    );
    return rows.map(toWindowRecord);
  }

  /**
   * Every window whose spend differs from what usage_hourly says it should be: the sum of the
   * budget's rollup rows in the window, from counts_from on. Exact; empty when all agree.
   * `accountId` narrows it to one account.
   */
  async drift(accountId?: string, q: Queryable = this.pool): Promise<BudgetDrift[]> {
    const { rows } = await q.query(
      `WITH expected AS (
         SELECT b.id AS budget_id, ${BUDGET_WINDOW_START_SQL('h.hour', 'b.time_window')} AS window_start, sum(h.cost_usd) AS spend
         FROM budgets b JOIN usage_hourly h ON h.account_id = b.account_id AND h.hour >= b.counts_from
           AND (b.api_key_id IS NULL OR h.api_key_id = b.api_key_id) AND (b.model IS NULL OR h.model = b.model)
         WHERE b.deleted_at IS NULL AND ($1::text IS NULL OR b.account_id = $1)
         GROUP BY 1, 2
       ), kept AS (
         SELECT w.budget_id, w.window_start, w.spend_usd AS spend
         FROM budget_windows w JOIN budgets b ON b.id = w.budget_id
         WHERE b.deleted_at IS NULL AND ($1::text IS NULL OR b.account_id = $1)
       )
       SELECT coalesce(k.budget_id, e.budget_id) AS budget_id, b.account_id, coalesce(k.window_start, e.window_start) AS window_start,
         coalesce(k.spend, 0)::text AS budget_spend, coalesce(e.spend, 0)::text AS rollup_spend,
         (coalesce(k.spend, 0) - coalesce(e.spend, 0))::text AS difference
       FROM kept k FULL JOIN expected e ON e.budget_id = k.budget_id AND e.window_start = k.window_start
       JOIN budgets b ON b.id = coalesce(k.budget_id, e.budget_id)
       WHERE coalesce(k.spend, 0) <> coalesce(e.spend, 0)
       ORDER BY 1, 3`,
      [accountId ?? null],
    );
    return rows.map((r) => ({
      budgetId: r.budget_id,
      accountId: r.account_id,
      windowStart: r.window_start,
      budgetSpendUsd: r.budget_spend,
      rollupSpendUsd: r.rollup_spend,
      differenceUsd: r.difference,
    }));
  }

  /** How many budget windows there are (the reconciliation report says how much it compared). */
  async countWindows(accountId?: string, q: Queryable = this.pool): Promise<number> {
    const { rows } = await q.query<{ n: string }>(
      `SELECT count(*) AS n FROM budget_windows w JOIN budgets b ON b.id = w.budget_id
       WHERE b.deleted_at IS NULL AND ($1::text IS NULL OR b.account_id = $1)`,
      [accountId ?? null],
    );
    return Number(rows[0].n);
  }
}

function toWindowRecord(r: { budget_id: string; window_start: Date; spend_usd: string; version: string }): BudgetWindowRecord {
  return { budgetId: r.budget_id, windowStart: r.window_start, spendUsd: r.spend_usd, version: r.version };
}
