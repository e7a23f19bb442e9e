import type { Pool } from 'pg';
import { PRICE_OVERRIDE_COLUMNS, toPriceOverrideRecord, type PriceOverrideRecord } from './price-overrides.repository';
import { Transactor, type Queryable } from './transactor';

export interface PriceVersionRecord {
  id: string;
  modelId: string;
  effectiveFrom: Date;
  inputPerMTok: string;
  outputPerMTok: string;
  cacheReadPerMTok: string;
  cacheWritePerMTok: string | null;
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
    // One snapshot for all the reads, so the revision describes exactly what was loaded.
    return new Transactor(this.pool).run(async (client) => {
      const revision = (await client.query<{ revision: string }>(REVISION_SQL)).rows[0].revision;
      const models = await client.query(
        'SELECT id, display_name, provider, context_window, max_output_tokens FROM models ORDER BY id',
      );
      const versions = await client.query(
        `SELECT id::text, model_id, effective_from, input_per_mtok::text, output_per_mtok::text,
                cache_read_per_mtok::text, cache_write_per_mtok::text
         FROM price_versions ORDER BY model_id, effective_from`,
      );
      const overrides = await client.query(`SELECT ${PRICE_OVERRIDE_COLUMNS} FROM account_price_overrides ORDER BY id`);
      return {
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
    }, { readOnly: true });
  }

  async upsertModel(model: ModelRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO models (id, display_name, provider, context_window, max_output_tokens)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, provider = EXCLUDED.provider,
         context_window = EXCLUDED.context_window, max_output_tokens = EXCLUDED.max_output_tokens`,
      [model.id, model.displayName, model.provider, model.contextWindow, model.maxOutputTokens],
    );
  }

  /** undefined when a model with this id exists (the API answers 409: models are created once). */
  async createModel(model: ModelRecord, q: Queryable = this.pool): Promise<ModelWithVersions | undefined> {
    const { rows } = await q.query(
      `INSERT INTO models (id, display_name, provider, context_window, max_output_tokens)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING
       RETURNING id, display_name, provider, context_window, max_output_tokens, created_at`,
      [model.id, model.displayName, model.provider, model.contextWindow, model.maxOutputTokens],
    );
    return rows[0] ? { ...toModelRecord(rows[0]), createdAt: rows[0].created_at, versions: [] } : undefined;
  }

  async getModel(id: string, q: Queryable = this.pool): Promise<ModelRecord | undefined> {
    const { rows } = await q.query('SELECT id, display_name, provider, context_window, max_output_tokens FROM models WHERE id = $1', [id]);
    return rows[0] ? toModelRecord(rows[0]) : undefined;
  }

  /** Every model with its price versions, oldest version first. Models are few (tens). */
  async listModelsWithVersions(): Promise<ModelWithVersions[]> {
    const models = await this.pool.query(
      'SELECT id, display_name, provider, context_window, max_output_tokens, created_at FROM models ORDER BY id',
    );
    const versions = await this.pool.query(`SELECT ${VERSION_COLUMNS} FROM price_versions ORDER BY model_id, effective_from`);
    const byModel = new Map<string, PriceVersionRecord[]>();
    for (const r of versions.rows) {
      const list = byModel.get(r.model_id) ?? [];
      list.push(toVersionRecord(r));
      byModel.set(r.model_id, list);
    }
    return models.rows.map((r) => ({ ...toModelRecord(r), createdAt: r.created_at, versions: byModel.get(r.id) ?? [] }));
  }

  /**
   * Versions are immutable: inserting one that exists (same model and instant) is a no-op, never
   * an update (`created: false`, and the API answers 409: a correction is a new version).
   */
  async createPriceVersion(
    v: Omit<PriceVersionRecord, 'id'>,
    q: Queryable = this.pool,
  ): Promise<{ created: boolean; version?: PriceVersionRecord }> {
    const { rows } = await q.query(
      `INSERT INTO price_versions (model_id, effective_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (model_id, effective_from) DO NOTHING
       RETURNING ${VERSION_COLUMNS}`,
      [v.modelId, v.effectiveFrom.toISOString(), v.inputPerMTok, v.outputPerMTok, v.cacheReadPerMTok, v.cacheWritePerMTok],
    );
    return rows[0] ? { created: true, version: toVersionRecord(rows[0]) } : { created: false };
  }
}

const VERSION_COLUMNS = `id::text, model_id, effective_from, input_per_mtok::text, output_per_mtok::text,
  cache_read_per_mtok::text, cache_write_per_mtok::text`;

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

function toModelRecord(r: Record<string, any>): ModelRecord {
  return {
    id: r.id,
    displayName: r.display_name,
    provider: r.provider,
    contextWindow: r.context_window,
    maxOutputTokens: r.max_output_tokens,
  };
}

const REVISION_SQL = `
SELECT (SELECT count(*) || ':' || coalesce(max(id), 0) FROM price_versions) || '/' ||
       (SELECT count(*) || ':' || coalesce(md5(string_agg(id || ':' || coalesce(context_window, -1) || ':' || coalesce(max_output_tokens, -1), ',' ORDER BY id)), '') FROM models) || '/' ||
       (SELECT count(*) || ':' || coalesce(max(id), 0) FROM account_price_overrides)
       AS revision`;
