import type { Pool } from 'pg';
import { boundaryHours, parseCostUnits, type CreditGrantTerms, type CreditUsage } from '@tokenmeter/billing';
import type { Queryable } from './transactor';

/**
 * The usage credits are allocated over (docs/credits.md, "One allocation, two readers"): the
 * input of allocateCredits, read so that hourly rollups stand in for events wherever a whole hour
 * is covered or not, and single events only where they must be.
 *
 * - Real-time (no invoiceId): the account's UNINVOICED priced usage. Hours of months the account
 *   has no invoice for come from usage_hourly, one piece per (model, UTC hour), summed over API
 *   keys; months that have an invoice (any status: its rollups include the events it claimed) come
 *   as single events with invoice_id IS NULL (late events). The boundaryHours of the grants always
 *   come as events, never as hour rows, so nothing is counted twice or missed.
 * - One invoice (invoiceId): the events that invoice claimed, grouped per (model, UTC hour), and
 *   per (model, instant) in the boundary hours.
 *
 * Usage no grant could ever cover (before the earliest effective_at, at or after the latest
 * expires_at, outside every grant's models when all are scoped) is left out: allocateCredits would
 * leave it uncovered anyway. Events are grouped per (model, occurred_at): equal instants burn
 * together, which is what allocating them one by one in time order does too.
 */
export interface CreditUsageQuery {
  /** The grants whose coverage matters (the pools); their edges decide the boundary hours. */
  grants: readonly CreditGrantTerms[];
  /** Only the usage this invoice claimed (the close); otherwise the uninvoiced usage. */
  invoiceId?: string;
}

export class CreditUsageRepository {
  constructor(private readonly pool: Pool) {}

  /** Usage oldest first, exact cost units; [] when there are no grants. */
  async creditUsage(accountId: string, query: CreditUsageQuery, q: Queryable = this.pool): Promise<CreditUsage[]> {
    const { grants } = query;
    if (grants.length === 0) return [];
    const from = new Date(Math.min(...grants.map((g) => g.effectiveAt.getTime())));
    const to = grants.some((g) => g.expiresAt === null) ? null : new Date(Math.max(...grants.map((g) => g.expiresAt!.getTime())));
    if (to !== null && to.getTime() <= from.getTime()) return [];
    const models = grants.some((g) => g.models.length === 0) ? null : [...new Set(grants.flatMap((g) => g.models))].sort();
    const boundary = [...boundaryHours(grants)].sort((a, b) => a - b).map((ms) => new Date(ms).toISOString());
    const params = [accountId, from.toISOString(), to?.toISOString() ?? null, models, boundary];
    const { rows } =
      query.invoiceId === undefined
        ? await q.query<UsageRow>(UNINVOICED_SQL, params)
        : await q.query<UsageRow>(CLAIMED_SQL, [...params, query.invoiceId]);
    return rows.map((r) => {
      const at = new Date(r.at);
      return { at, model: r.model, costUnits: parseCostUnits(r.cost, 'cost_usd'), servicePeriod: at.toISOString().slice(0, 7) };
    });
  }
}

interface UsageRow {
  model: string;
  at: Date;
  cost: string;
}

// $1 account, $2 from (earliest effective_at), $3 to (latest expires_at, null: none), $4 models
// (null: any), $5 boundary hours. The time and model bounds only skip usage no grant covers.
const EVENT_BOUNDS = `e.account_id = $1 AND e.cost_usd IS NOT NULL AND e.occurred_at >= $2::timestamptz
  AND ($3::timestamptz IS NULL OR e.occurred_at < $3::timestamptz) AND ($4::text[] IS NULL OR e.model = ANY($4::text[]))`;

/**
 * Hour rows of months without an invoice (boundary hours excluded), plus events with
 * invoice_id IS NULL in the ranges that must be read event by event: every invoiced month, and the
 * boundary hours outside those months. The ranges never overlap, and an hour is read from exactly
 * one of the two sources. Each range is an index range scan of (account_id, occurred_at).
 *
 * A month without an invoice of its own can still hold claimed events: a close claims the late
 * events of earlier months that have no invoice (an October event billed on November's invoice),
 * and its rollups include them. So each hour row is netted against the claimed events of its hour,
 * read only in the months that can hold one: months without an invoice before the latest invoice's
 * period_end (a close claims nothing from its period_end on). The usual case (every past month
 * invoiced, the current month not yet) has no such month and reads the rollups alone.
 */
const UNINVOICED_SQL = `
WITH invoiced AS (
  SELECT period_start, period_end FROM invoices WHERE account_id = $1
), event_ranges AS (
  SELECT period_start AS range_start, period_end AS range_end FROM invoiced
  UNION ALL
  SELECT b, b + interval '1 hour' FROM unnest($5::timestamptz[]) AS b
  WHERE NOT EXISTS (SELECT 1 FROM invoiced i WHERE b >= i.period_start AND b < i.period_end)
), claimable AS (
  SELECT m AT TIME ZONE 'UTC' AS range_start, (m + interval '1 month') AT TIME ZONE 'UTC' AS range_end
  FROM generate_series(date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC'),
    (SELECT max(period_end) FROM invoiced) AT TIME ZONE 'UTC' - interval '1 month', interval '1 month') AS m
  WHERE NOT EXISTS (SELECT 1 FROM invoiced i WHERE m AT TIME ZONE 'UTC' >= i.period_start AND m AT TIME ZONE 'UTC' < i.period_end)
), hours AS (
  SELECT h.model, h.hour, h.cost_usd
  FROM usage_hourly h
  WHERE h.account_id = $1 AND h.hour >= date_trunc('hour', $2::timestamptz, 'UTC')
    AND ($3::timestamptz IS NULL OR h.hour < $3::timestamptz) AND ($4::text[] IS NULL OR h.model = ANY($4::text[]))
    AND h.hour <> ALL($5::timestamptz[])
    AND NOT EXISTS (SELECT 1 FROM invoiced i WHERE h.hour >= i.period_start AND h.hour < i.period_end)
  UNION ALL
  SELECT e.model, date_trunc('hour', e.occurred_at, 'UTC'), -e.cost_usd
  FROM claimable r
  JOIN usage_events e ON e.account_id = $1 AND e.occurred_at >= r.range_start AND e.occurred_at < r.range_end
  WHERE e.invoice_id IS NOT NULL AND ${EVENT_BOUNDS} AND date_trunc('hour', e.occurred_at, 'UTC') <> ALL($5::timestamptz[])
)
SELECT model, hour AS at, trim_scale(sum(cost_usd))::text AS cost
FROM hours
GROUP BY model, hour
HAVING sum(cost_usd) <> 0
UNION ALL
SELECT e.model, e.occurred_at, trim_scale(sum(e.cost_usd))::text
FROM event_ranges r
JOIN usage_events e ON e.account_id = $1 AND e.occurred_at >= r.range_start AND e.occurred_at < r.range_end
WHERE e.invoice_id IS NULL AND ${EVENT_BOUNDS}
GROUP BY e.model, e.occurred_at
HAVING sum(e.cost_usd) <> 0
ORDER BY at, model`;

/** One invoice's claimed events ($6): per (model, UTC hour), per (model, instant) in boundary hours. */
const CLAIMED_SQL = `
SELECT e.model,
  CASE WHEN date_trunc('hour', e.occurred_at, 'UTC') = ANY($5::timestamptz[]) THEN e.occurred_at
       ELSE date_trunc('hour', e.occurred_at, 'UTC') END AS at,
  trim_scale(sum(e.cost_usd))::text AS cost
FROM usage_events e
WHERE e.invoice_id = $6 AND ${EVENT_BOUNDS}
GROUP BY 1, 2
HAVING sum(e.cost_usd) <> 0
ORDER BY at, model`;
