import type { Pool } from 'pg';

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
  /** Changes whenever a model or price version is added or a model's limits change. */
  revision: string;
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
    const client = await this.pool.connect();
    try {
      // One snapshot for all three reads, so the revision describes exactly what was loaded.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const revision = (await client.query<{ revision: string }>(REVISION_SQL)).rows[0].revision;
      const models = await client.query(
        'SELECT id, display_name, provider, context_window, max_output_tokens FROM models ORDER BY id',
      );
      const versions = await client.query(
        `SELECT id::text, model_id, effective_from, input_per_mtok::text, output_per_mtok::text,
                cache_read_per_mtok::text, cache_write_per_mtok::text
         FROM price_versions ORDER BY model_id, effective_from`,
      );
      await client.query('COMMIT');
      return {
        revision,
        models: models.rows.map((r) => ({
          id: r.id,
          displayName: r.display_name,
          provider: r.provider,
          contextWindow: r.context_window,
          maxOutputTokens: r.max_output_tokens,
        })),
        versions: versions.rows.map((r) => ({
          id: r.id,
          modelId: r.model_id,
          effectiveFrom: r.effective_from,
          inputPerMTok: r.input_per_mtok,
          outputPerMTok: r.output_per_mtok,
          cacheReadPerMTok: r.cache_read_per_mtok,
          cacheWritePerMTok: r.cache_write_per_mtok,
        })),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
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

  /** Versions are immutable: inserting one that exists (same model and instant) is a no-op, never an update. */
  async createPriceVersion(v: Omit<PriceVersionRecord, 'id'>): Promise<{ created: boolean }> {
    const { rowCount } = await this.pool.query(
      `INSERT INTO price_versions (model_id, effective_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (model_id, effective_from) DO NOTHING`,
      [v.modelId, v.effectiveFrom.toISOString(), v.inputPerMTok, v.outputPerMTok, v.cacheReadPerMTok, v.cacheWritePerMTok],
    );
    return { created: rowCount === 1 };
  }
}

const REVISION_SQL = `
SELECT (SELECT count(*) || ':' || coalesce(max(id), 0) FROM price_versions) || '/' ||
       (SELECT count(*) || ':' || coalesce(md5(string_agg(id || ':' || coalesce(context_window, -1) || ':' || coalesce(max_output_tokens, -1), ',' ORDER BY id)), '') FROM models)
       AS revision`;
