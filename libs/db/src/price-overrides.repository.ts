import type { Pool } from 'pg';
import type { AccountPriceOverride } from './generated/prisma/client';
import { decimalTextOrNull, RATE_SCALE } from './prisma-values';
import { prismaFor, type Queryable } from './transactor';

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

/** Overrides are append-only like price versions: a change of terms is a new override (Prisma). */
export class PriceOverridesRepository {
  constructor(private readonly pool: Pool) {}

  async createPriceOverride(o: NewPriceOverride, q: Queryable = this.pool): Promise<PriceOverrideRecord> {
    const row = await prismaFor(this.pool, q).accountPriceOverride.create({
      data: {
        accountId: o.accountId,
        modelId: o.modelId,
        kind: o.kind,
        discountPercent: o.discountPercent,
        inputPerMTok: o.inputPerMTok,
        outputPerMTok: o.outputPerMTok,
        cacheReadPerMTok: o.cacheReadPerMTok,
        cacheWritePerMTok: o.cacheWritePerMTok,
        effectiveFrom: o.effectiveFrom,
        effectiveTo: o.effectiveTo,
      },
    });
    return fromPrismaRow(row);
  }

  async listPriceOverrides(accountId?: string, q: Queryable = this.pool): Promise<PriceOverrideRecord[]> {
    const rows = await prismaFor(this.pool, q).accountPriceOverride.findMany({
      where: { accountId },
      orderBy: [{ accountId: 'asc' }, { effectiveFrom: 'asc' }, { id: 'asc' }],
    });
    return rows.map(fromPrismaRow);
  }
}

/** discount_percent is NUMERIC(7, 4), as pg prints it (the rates: RATE_SCALE). */
const PERCENT_SCALE = 4;

function fromPrismaRow(r: AccountPriceOverride): PriceOverrideRecord {
  return {
    id: r.id.toString(),
    accountId: r.accountId,
    modelId: r.modelId,
    kind: r.kind as PriceOverrideRecord['kind'],
    discountPercent: decimalTextOrNull(r.discountPercent, PERCENT_SCALE),
    inputPerMTok: decimalTextOrNull(r.inputPerMTok, RATE_SCALE),
    outputPerMTok: decimalTextOrNull(r.outputPerMTok, RATE_SCALE),
    cacheReadPerMTok: decimalTextOrNull(r.cacheReadPerMTok, RATE_SCALE),
    cacheWritePerMTok: decimalTextOrNull(r.cacheWritePerMTok, RATE_SCALE),
    effectiveFrom: r.effectiveFrom,
    effectiveTo: r.effectiveTo,
    createdAt: r.createdAt,
  };
}

/** A pg row of PRICE_OVERRIDE_COLUMNS (the ingest price book snapshot reads them with pg). */
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
