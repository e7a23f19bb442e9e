import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '@tokenmeter/billing';
import {
  AuditLogRepository,
  PriceBookRepository,
  Transactor,
  type ModelRecord,
  type ModelWithVersions,
  type PriceVersionRecord,
} from '@tokenmeter/db';
import type { Actor } from '../common/actor';
import { modelJson, priceVersionJson } from './admin-json';

/** Models and their price versions. Versions are immutable: a correction is a new version. */
@Injectable()
export class ModelsService {
  constructor(
    private readonly priceBook: PriceBookRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  async createModel(input: ModelRecord, actor: Actor): Promise<ModelWithVersions> {
    return this.transactor.run(async (q) => {
      const created = await this.priceBook.createModel(input, q);
      if (!created) throw new ConflictError(`model ${input.id} already exists`);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'model.create', targetType: 'model', targetId: created.id, before: null, after: modelJson(created), requestId: actor.requestId },
        q,
      );
      return created;
    });
  }

  listModels(): Promise<ModelWithVersions[]> {
    return this.priceBook.listModelsWithVersions();
  }

  /**
   * A new price version. Ingest picks it up from its next batch (the price book revision changes).
   * Events already priced keep their price until an admin reprices their range.
   */
  async createPriceVersion(version: Omit<PriceVersionRecord, 'id'>, actor: Actor): Promise<PriceVersionRecord> {
    return this.transactor.run(async (q) => {
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
    });
  }
}
