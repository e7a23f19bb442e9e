import type { Pool } from 'pg';
import type { Queryable } from './transactor';

/** A row of account_price_overrides; decimals as exact strings. */
export interface PriceOverrideRecord {
  id: string;
  accountId: string;
  modelId: string | null;
  kind: 'rate_card' | 'discount';
  discountPercent: string | null;
  inputPerMTok: string | null;
  outputPerMTok: string | null;
  cacheReadPerMTok: string | null;
  cacheWritePerMTok: string | null;
  effectiveFrom: Date;
  effectiveTo: Date | null;
  createdAt: Date;
}

export type NewPriceOverride = Omit<PriceOverrideRecord, 'id' | 'createdAt'>;

export const PRICE_OVERRIDE_COLUMNS = `id::text, account_id, model_id, kind, discount_percent::text, input_per_mtok::text,
  output_per_mtok::text, cache_read_per_mtok::text, cache_write_per_mtok::text, effective_from, effective_to, created_at`;

/** Overrides are append-only like price versions: a change of terms is a new override. */
export class PriceOverridesRepository {
  constructor(private readonly pool: Pool) {}

  async createPriceOverride(o: NewPriceOverride, q: Queryable = this.pool): Promise<PriceOverrideRecord> {
    const { rows } = await q.query(
      `INSERT INTO account_price_overrides (account_id, model_id, kind, discount_percent, input_per_mtok, output_per_mtok,
         cache_read_per_mtok, cache_write_per_mtok, effective_from, effective_to)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${PRICE_OVERRIDE_COLUMNS}`,
      [
        o.accountId,
        o.modelId,
        o.kind,
        o.discountPercent,
        o.inputPerMTok,
        o.outputPerMTok,
        o.cacheReadPerMTok,
        o.cacheWritePerMTok,
        o.effectiveFrom.toISOString(),
        o.effectiveTo?.toISOString() ?? null,
      ],
    );
    return toPriceOverrideRecord(rows[0]);
  }

  async listPriceOverrides(accountId?: string, q: Queryable = this.pool): Promise<PriceOverrideRecord[]> {
    const { rows } = await q.query(
      `SELECT ${PRICE_OVERRIDE_COLUMNS} FROM account_price_overrides
       WHERE ($1::text IS NULL OR account_id = $1) ORDER BY account_id, effective_from, id`,
      [accountId ?? null],
    );
    return rows.map(toPriceOverrideRecord);
  }
}

export function toPriceOverrideRecord(r: Record<string, any>): PriceOverrideRecord {
  return {
    id: r.id,
    accountId: r.account_id,
    modelId: r.model_id,
    kind: r.kind,
    discountPercent: r.discount_percent,
    inputPerMTok: r.input_per_mtok,
    outputPerMTok: r.output_per_mtok,
    cacheReadPerMTok: r.cache_read_per_mtok,
    cacheWritePerMTok: r.cache_write_per_mtok,
    effectiveFrom: r.effective_from,
    effectiveTo: r.effective_to,
    createdAt: r.created_at,
  };
}
