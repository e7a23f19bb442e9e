import { Injectable } from '@nestjs/common';
import {
  ConflictError,
  NotFoundError,
  parsePriceMap,
  planPriceImport,
  type BookModel,
  type ModelLimits,
  type PriceImportPlan,
  type PriceMap,
  type PriceMapFormat,
} from '@tokenmeter/billing';
import type { Actor } from '@tokenmeter/auth';
import {
  AuditLogRepository,
  PriceBookRepository,
  Transactor,
  type ModelRecord,
  type ModelWithVersions,
  type PriceVersionRecord,
  type Queryable,
} from '@tokenmeter/db';
import { modelJson, priceVersionJson } from './price-book-json';

/** A price map to import: what `prices import` and POST /admin/prices/import take. */
export interface PriceImportRequest {
  format: PriceMapFormat;
  /** The file's text, as it is: numbers are read from it exactly. */
  content: string;
  effectiveAt: Date;
  /** Book model id -> the map's key for it; null leaves the model out. */
  models?: ReadonlyMap<string, string | null>;
}

export interface PriceImportResult {
  plan: PriceImportPlan;
  /** The parsed map (the dashboard keeps the entries the plan used for its apply form). */
  map: PriceMap;
  dryRun: boolean;
  /** The versions added (none in a dry run). */
  versions: PriceVersionRecord[];
}

/**
 * Models and their price versions, for the admin API, the dashboard and the CLI (without Nest).
 * Versions are immutable: a correction is a new version. Every write is audited in its transaction.
 */
@Injectable()
export class ModelsService {
  constructor(
    private readonly priceBook: PriceBookRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  async createModel(input: ModelRecord, actor: Actor): Promise<ModelWithVersions> {
    return this.transactor.run((q) => this.createModelIn(q, input, actor));
  }

  listModels(): Promise<ModelWithVersions[]> {
    return this.priceBook.listModelsWithVersions();
  }

  /**
   * A new price version. Ingest picks it up from its next batch (the price book revision changes).
   * Events already priced keep their price until an admin reprices their range.
   */
  async createPriceVersion(version: Omit<PriceVersionRecord, 'id'>, actor: Actor): Promise<PriceVersionRecord> {
    return this.transactor.run((q) => this.createPriceVersionIn(q, version, actor));
  }

  /**
   * Imports a LiteLLM or OpenRouter price map (planPriceImport says what changes). A dry run
   * plans on a read-only snapshot and writes nothing; otherwise the plan is made and carried out
   * in one transaction, so it is planned against the book it changes: new models
   * (model.create), limits (model.update), versions (price_version.create), each audited as the
   * admin API's own routes audit them, and all or nothing.
   */
  async importPrices(request: PriceImportRequest, dryRun: boolean, actor: Actor): Promise<PriceImportResult> {
    // Parsed outside the transaction: a 3 MB LiteLLM map is ~200 ms of CPU, no reason to hold a connection.
    const map = parsePriceMap(request.content, request.format);
    return this.transactor.runWithOutcome<PriceImportResult>(
      async (q) => {
        const book = await this.priceBook.listModelsWithVersions(q);
        const plan = planPriceImport(map, book.map(bookModelOf), { effectiveAt: request.effectiveAt, models: request.models });
        if (dryRun) return { result: { plan, map, dryRun, versions: [] }, commit: false };
        const byId = new Map(book.map((m) => [m.id, m]));
        const versions: PriceVersionRecord[] = [];
        for (const m of plan.models) {
          if (m.status === 'new_model') {
            const limits = m.limits ?? { contextWindow: null, maxOutputTokens: null };
            await this.createModelIn(q, { id: m.modelId, displayName: null, provider: m.provider, ...limits }, actor);
          } else if (m.limits) {
            await this.updateLimitsIn(q, byId.get(m.modelId)!, m.limits, actor);
          }
          if (m.version) versions.push(await this.createPriceVersionIn(q, { modelId: m.modelId, effectiveFrom: plan.effectiveAt, ...m.version }, actor));
        }
        return { result: { plan, map, dryRun, versions }, commit: true };
      },
      { readOnly: dryRun },
    );
  }

  private async createModelIn(q: Queryable, input: ModelRecord, actor: Actor): Promise<ModelWithVersions> {
    const created = await this.priceBook.createModel(input, q);
    if (!created) throw new ConflictError(`model ${input.id} already exists`);
    await this.audit.append(
      { actorKeyId: actor.keyId, action: 'model.create', targetType: 'model', targetId: created.id, before: null, after: modelJson(created), requestId: actor.requestId },
      q,
    );
    return created;
  }

  private async updateLimitsIn(q: Queryable, before: ModelWithVersions, limits: ModelLimits, actor: Actor): Promise<void> {
    await this.priceBook.updateModelLimits(before.id, limits, q);
    await this.audit.append(
      {
        actorKeyId: actor.keyId,
        action: 'model.update',
        targetType: 'model',
        targetId: before.id,
        before: modelJson(before),
        after: modelJson({ ...before, ...limits }),
        requestId: actor.requestId,
      },
      q,
    );
  }

  private async createPriceVersionIn(q: Queryable, version: Omit<PriceVersionRecord, 'id'>, actor: Actor): Promise<PriceVersionRecord> {
    if (!(await this.priceBook.getModel(version.modelId, q))) throw new NotFoundError('model', version.modelId);
    const { created, version: stored } = await this.priceBook.createPriceVersion(version, q);
    if (!created || !stored) {
      throw new ConflictError(
        `model ${version.modelId} already has a price version effective from ${version.effectiveFrom.toISOString()}; versions are immutable, so a correction is a new version with a later effective_from`,
      );
    }
    await this.audit.append(
      { actorKeyId: actor.keyId, action: 'price_version.create', targetType: 'price_version', targetId: stored.id, before: null, after: priceVersionJson(stored), requestId: actor.requestId },
      q,
    );
    return stored;
  }
}

function bookModelOf(m: ModelWithVersions): BookModel {
  // Versions come oldest first: the last is the one an import follows.
  const latest = m.versions.at(-1);
  return { id: m.id, contextWindow: m.contextWindow, maxOutputTokens: m.maxOutputTokens, latest: latest ?? null };
}
