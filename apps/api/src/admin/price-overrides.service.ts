import { Injectable } from '@nestjs/common';
import { NotFoundError, ValidationError } from '@tokenmeter/billing';
import {
  AccountsRepository,
  AuditLogRepository,
  PriceBookRepository,
  PriceOverridesRepository,
  Transactor,
  type NewPriceOverride,
  type PriceOverrideRecord,
} from '@tokenmeter/db';
import type { Actor } from '../common/actor';
import { priceOverrideJson } from './admin-json';

/**
 * Per-account rate cards and discounts. They apply at pricing time (ingest picks a new one up from
 * its next batch); usage already priced changes only through POST /admin/reprice.
 */
@Injectable()
export class PriceOverridesService {
  constructor(
    private readonly overrides: PriceOverridesRepository,
    private readonly accounts: AccountsRepository,
    private readonly priceBook: PriceBookRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  async createPriceOverride(input: NewPriceOverride, actor: Actor): Promise<PriceOverrideRecord> {
    return this.transactor.run(async (q) => {
      if (!(await this.accounts.getAccount(input.accountId, q))) throw new NotFoundError('account', input.accountId);
      if (input.modelId !== null && !(await this.priceBook.getModel(input.modelId, q))) {
        throw new ValidationError('model_id', `unknown model ${input.modelId} (create it with POST /admin/models first)`);
      }
      const created = await this.overrides.createPriceOverride(input, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'price_override.create', targetType: 'price_override', targetId: created.id, before: null, after: priceOverrideJson(created), requestId: actor.requestId },
        q,
      );
      return created;
    });
  }

  async listPriceOverrides(accountId: string): Promise<PriceOverrideRecord[]> {
    if (!(await this.accounts.getAccount(accountId))) throw new NotFoundError('account', accountId);
    return this.overrides.listPriceOverrides(accountId);
  }
}
