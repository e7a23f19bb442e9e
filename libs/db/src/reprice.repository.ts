import type { Pool, PoolClient } from 'pg';

export interface RepriceFilter {
  from: Date;
  to: Date;
  accountId?: string;
}

export interface UnpricedEventRecord {
  eventId: string;
  accountId: string;
  apiKeyId: string;
  model: string;
  occurredAt: Date;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface EventPrice {
  eventId: string;
  priceVersionId: string;
  inputCostUsd: string;
  outputCostUsd: string;
  cacheReadCostUsd: string;
  cacheWriteCostUsd: string;
  costUsd: string;
}

export interface RepriceResult {
  examined: number;
  priced: number;
}

const CHUNK = 5000;

export class RepriceRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Prices the unpriced, not yet invoiced events of a time range, in one transaction, and moves
   * their costs into the hourly rollups, so rollups keep equalling the raw events.
   * `price` is the pure pricing step; it returns undefined for events still without a price.
   */
  async repriceUnpriced(
    filter: RepriceFilter,
    price: (events: UnpricedEventRecord[]) => EventPrice[],
  ): Promise<RepriceResult> {
    const client = await this.pool.connect();
    let examined = 0;
    let priced = 0;
    try {
      await client.query('BEGIN');
      let after = '';
      for (;;) {
        const chunk = await this.lockUnpricedChunk(client, filter, after, CHUNK);
        if (chunk.length === 0) break;
        examined += chunk.length;
        after = chunk[chunk.length - 1].eventId;
        const prices = price(chunk);
        if (prices.length > 0) priced += await this.applyPrices(client, prices);
        if (chunk.length < CHUNK) break;
      }
      await client.query('COMMIT');
      return { examined, priced };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async lockUnpricedChunk(
    client: PoolClient,
    filter: RepriceFilter,
    afterEventId: string,
    limit: number,
  ): Promise<UnpricedEventRecord[]> {
    const { rows } = await client.query(
      `SELECT event_id, account_id, api_key_id, model, occurred_at,
              input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
       FROM usage_events
       WHERE price_version_id IS NULL AND invoice_id IS NULL
         AND occurred_at >= $1 AND occurred_at < $2
         AND ($3::text IS NULL OR account_id = $3)
         AND event_id > $4
       ORDER BY event_id
       LIMIT $5
       FOR UPDATE`,
      [filter.from.toISOString(), filter.to.toISOString(), filter.accountId ?? null, afterEventId, limit],
    );
    return rows.map((r) => ({
      eventId: r.event_id,
      accountId: r.account_id,
      apiKeyId: r.api_key_id,
      model: r.model,
      occurredAt: r.occurred_at,
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      cacheReadTokens: Number(r.cache_read_tokens),
      cacheWriteTokens: Number(r.cache_write_tokens),
    }));
  }

  private async applyPrices(client: PoolClient, prices: EventPrice[]): Promise<number> {
    const { rows } = await client.query<{ priced: string }>(APPLY_PRICES_SQL, [
      prices.map((p) => p.eventId),
      prices.map((p) => p.priceVersionId),
      prices.map((p) => p.inputCostUsd),
      prices.map((p) => p.outputCostUsd),
      prices.map((p) => p.cacheReadCostUsd),
      prices.map((p) => p.cacheWriteCostUsd),
      prices.map((p) => p.costUsd),
    ]);
    return Number(rows[0].priced);
  }
}

// The rollup row always exists for an unpriced event (it was counted when the event arrived),
// so pricing it only moves it from unpriced_requests into the cost columns.
const APPLY_PRICES_SQL = `
WITH p AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[])
    AS t(event_id, price_version_id, input_cost_usd, output_cost_usd, cache_read_cost_usd, cache_write_cost_usd, cost_usd)
), upd AS (
  UPDATE usage_events e SET
    price_version_id = p.price_version_id, input_cost_usd = p.input_cost_usd, output_cost_usd = p.output_cost_usd,
    cache_read_cost_usd = p.cache_read_cost_usd, cache_write_cost_usd = p.cache_write_cost_usd,
    cost_usd = p.cost_usd, priced_at = now()
  FROM p
  WHERE e.event_id = p.event_id AND e.price_version_id IS NULL
  RETURNING e.account_id, e.api_key_id, e.model, e.occurred_at, p.input_cost_usd, p.output_cost_usd,
    p.cache_read_cost_usd, p.cache_write_cost_usd, p.cost_usd
), delta AS (
  SELECT account_id, api_key_id, model, date_trunc('hour', occurred_at, 'UTC') AS hour, count(*) AS n,
    sum(input_cost_usd) AS input_cost_usd, sum(output_cost_usd) AS output_cost_usd,
    sum(cache_read_cost_usd) AS cache_read_cost_usd, sum(cache_write_cost_usd) AS cache_write_cost_usd,
    sum(cost_usd) AS cost_usd
  FROM upd GROUP BY 1, 2, 3, 4
), roll AS (
  UPDATE usage_hourly h SET
    unpriced_requests = h.unpriced_requests - d.n,
    input_cost_usd = h.input_cost_usd + d.input_cost_usd,
    output_cost_usd = h.output_cost_usd + d.output_cost_usd,
    cache_read_cost_usd = h.cache_read_cost_usd + d.cache_read_cost_usd,
    cache_write_cost_usd = h.cache_write_cost_usd + d.cache_write_cost_usd,
    cost_usd = h.cost_usd + d.cost_usd
  FROM delta d
  WHERE h.account_id = d.account_id AND h.api_key_id = d.api_key_id AND h.model = d.model AND h.hour = d.hour
)
SELECT count(*) AS priced FROM upd`;
