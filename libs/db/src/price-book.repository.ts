import type { Pool } from 'pg';
import type { SeedPriceVersion } from '@tokenmeter/billing';
import { PRICE_OVERRIDE_COLUMNS, toPriceOverrideRecord, type PriceOverrideRecord } from './price-overrides.repository';
import type { Model, PriceVersion } from './generated/prisma/client';
import { decimalText, decimalTextOrNull, RATE_SCALE } from './prisma-values';
import { pgTransaction, prismaFor, type Queryable } from './transactor';

/** A price_versions row: libs/billing's plain-data price version (exact decimal strings) and its id. */
export interface PriceVersionRecord extends SeedPriceVersion {
  id: string;
}

export interface ModelRecord {
  id: string;
  displayName: string | null;
  provider: string | null;
  contextWindow: number | null;
  maxOutputTokens: number | null;
}

export interface PriceBookSnapshot {
  models: ModelRecord[];
  versions: PriceVersionRecord[];
  /** Account price overrides, loaded with the book so pricing needs no per-event query. */
  overrides: PriceOverrideRecord[];
  /** Changes whenever a model, price version or account override is added or a model's limits change. */
  revision: string;
}

export interface ModelWithVersions extends ModelRecord {
  createdAt: Date;
  versions: PriceVersionRecord[];
}

export class PriceBookRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * A cheap fingerprint of the price book, checked before every batch so a price added while
   * the ingestor runs applies to the very next batch. Versions are append-only (immutable),
   * so the highest id and the count identify their state.
   */
  async getRevision(): Promise<string> {
    const { rows } = await this.pool.query<{ revision: string }>(REVISION_SQL);
    return rows[0].revision;
  }

  async loadSnapshot(): Promise<PriceBookSnapshot> {
    // One snapshot for all the reads, so the revision describes exactly what was loaded. A set
    // read for the ingest cache: pg, like the rest of the ingest path.
    return pgTransaction(this.pool, async (client) => {
      const revision = (await client.query<{ revision: string }>(REVISION_SQL)).rows[0].revision;
      const models = await client.query(
        'SELECT id, display_name, provider, context_window, max_output_tokens FROM models ORDER BY id',
      );
      const versions = await client.query(
        `SELECT id::text, model_id, effective_from, input_per_mtok::text, output_per_mtok::text,
                cache_read_per_mtok::text, cache_write_per_mtok::text
         FROM price_versions ORDER BY model_id, effective_from`,
      );
      const overrides = await client.query(`SELECT ${PRICE_OVERRIDE_COLUMNS} FROM account_price_overrides ORDER BY account_price_overrides.id`);
      const snapshot: PriceBookSnapshot = {
        revision,
        overrides: overrides.rows.map(toPriceOverrideRecord),
        models: models.rows.map((r) => ({
          id: r.id,
          displayName: r.display_name,
          provider: r.provider,
          contextWindow: r.context_window,
          maxOutputTokens: r.max_output_tokens,
        })),
        versions: versions.rows.map(toVersionRecord),
      };
      return { result: snapshot, commit: true };
    }, { readOnly: true });
  }

  async upsertModel(model: ModelRecord): Promise<void> {
    const { id, ...limits } = model;
    await prismaFor(this.pool, this.pool).model.upsert({ where: { id }, create: model, update: limits });
  }

  /** undefined when a model with this id exists (the API answers 409: models are created once). */
  async createModel(model: ModelRecord, q: Queryable = this.pool): Promise<ModelWithVersions | undefined> {
    // skipDuplicates is ON CONFLICT DO NOTHING: a taken id does not abort the caller's transaction.
    const [created] = await prismaFor(this.pool, q).model.createManyAndReturn({ data: [model], skipDuplicates: true });
    return created ? { ...fromModel(created), createdAt: created.createdAt, versions: [] } : undefined;
  }

  async getModel(id: string, q: Queryable = this.pool): Promise<ModelRecord | undefined> {
    const row = await prismaFor(this.pool, q).model.findUnique({ where: { id } });
    return row ? fromModel(row) : undefined;
  }

  /** Every model with its price versions, oldest version first. Models are few (tens). */
  async listModelsWithVersions(q: Queryable = this.pool): Promise<ModelWithVersions[]> {
    const models = await prismaFor(this.pool, q).model.findMany({
      orderBy: { id: 'asc' },
      include: { priceVersions: { orderBy: { effectiveFrom: 'asc' } } },
    });
    return models.map((m) => ({ ...fromModel(m), createdAt: m.createdAt, versions: m.priceVersions.map(fromPriceVersion) }));
  }

  /** A model's limits (they are not versioned: the audit flags use the current ones). */
  async updateModelLimits(id: string, limits: Pick<ModelRecord, 'contextWindow' | 'maxOutputTokens'>, q: Queryable = this.pool): Promise<ModelRecord> {
    return fromModel(await prismaFor(this.pool, q).model.update({ where: { id }, data: limits }));
  }

  /**
   * Versions are immutable: inserting one that exists (same model and instant) is a no-op, never
   * an update (`created: false`, and the API answers 409: a correction is a new version).
   */
  async createPriceVersion(
    v: Omit<PriceVersionRecord, 'id'>,
    q: Queryable = this.pool,
  ): Promise<{ created: boolean; version?: PriceVersionRecord }> {
    const [created] = await prismaFor(this.pool, q).priceVersion.createManyAndReturn({
      data: [
        {
          modelId: v.modelId,
          effectiveFrom: v.effectiveFrom,
          inputPerMTok: v.inputPerMTok,
          outputPerMTok: v.outputPerMTok,
          cacheReadPerMTok: v.cacheReadPerMTok,
          cacheWritePerMTok: v.cacheWritePerMTok,
        },
      ],
      skipDuplicates: true,
    });
    return created ? { created: true, version: fromPriceVersion(created) } : { created: false };
  }
}

function fromPriceVersion(v: PriceVersion): PriceVersionRecord {
  return {
    id: v.id.toString(),
    modelId: v.modelId,
    effectiveFrom: v.effectiveFrom,
    inputPerMTok: decimalText(v.inputPerMTok, RATE_SCALE),
    outputPerMTok: decimalText(v.outputPerMTok, RATE_SCALE),
    cacheReadPerMTok: decimalText(v.cacheReadPerMTok, RATE_SCALE),
    cacheWritePerMTok: decimalTextOrNull(v.cacheWritePerMTok, RATE_SCALE),
  };
}

function fromModel(m: Model): ModelRecord {
  return { id: m.id, displayName: m.displayName, provider: m.provider, contextWindow: m.contextWindow, maxOutputTokens: m.maxOutputTokens };
}

/** The ingest snapshot's pg rows (decimals as ::text). */
function toVersionRecord(r: Record<string, any>): PriceVersionRecord {
  return {
    id: r.id,
    modelId: r.model_id,
    effectiveFrom: r.effective_from,
    inputPerMTok: r.input_per_mtok,
    outputPerMTok: r.output_per_mtok,
    cacheReadPerMTok: r.cache_read_per_mtok,
    cacheWritePerMTok: r.cache_write_per_mtok,
  };
}

const REVISION_SQL = `
SELECT (SELECT count(*) || ':' || coalesce(max(id), 0) FROM price_versions) || '/' ||
       (SELECT count(*) || ':' || coalesce(md5(string_agg(id || ':' || coalesce(context_window, -1) || ':' || coalesce(max_output_tokens, -1), ',' ORDER BY id)), '') FROM models) || '/' ||
       (SELECT count(*) || ':' || coalesce(max(id), 0) FROM account_price_overrides)
       AS revision`;
