import { Injectable } from '@nestjs/common';
import { ConflictError, NotFoundError } from '@tokenmeter/billing';
import { AccountsRepository, AuditLogRepository, Transactor, type AccountRecord } from '@tokenmeter/db';
import type { Actor } from '../common/actor';
import { accountJson } from './admin-json';

@Injectable()
export class AccountsService {
  constructor(
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
  ) {}

  async createAccount(input: { id: string; name: string; email: string | null }, actor: Actor): Promise<AccountRecord> {
    return this.transactor.run(async (q) => {
      const created = await this.accounts.createAccount(input, q);
      if (!created) {
        // Usage for an unknown account creates a bare row at ingest, so "exists" is common: say how to name it.
        throw new ConflictError(`account ${input.id} already exists; use PATCH /admin/accounts/${input.id} to change its name or email`);
      }
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'account.create', targetType: 'account', targetId: created.id, before: null, after: accountJson(created), requestId: actor.requestId },
        q,
      );
      return created;
    });
  }

  getAccount(id: string): Promise<AccountRecord | undefined> {
    return this.accounts.getAccount(id);
  }

  async getAccountOrFail(id: string): Promise<AccountRecord> {
    const account = await this.accounts.getAccount(id);
    if (!account) throw new NotFoundError('account', id);
    return account;
  }

  listAccounts(page: { afterId?: string; limit: number }): Promise<AccountRecord[]> {
    return this.accounts.listAccounts(page);
  }

  /** The dashboard's account search: id prefix or name substring, by id. */
  searchAccounts(text: string, limit: number): Promise<AccountRecord[]> {
    return this.accounts.searchAccounts(text, limit);
  }

  /** Names for a page of account ids (one query). */
  getAccountsByIds(ids: string[]): Promise<AccountRecord[]> {
    return this.accounts.getAccountsByIds(ids);
  }

  async updateAccount(id: string, changes: { name?: string; email?: string | null; spendFailMode?: 'open' | 'closed' }, actor: Actor): Promise<AccountRecord> {
    return this.transactor.run(async (q) => {
      const before = await this.accounts.getAccount(id, q, true);
      if (!before) throw new NotFoundError('account', id);
      const after = (await this.accounts.updateAccount(id, changes, q))!;
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'account.update', targetType: 'account', targetId: id, before: accountJson(before), after: accountJson(after), requestId: actor.requestId },
        q,
      );
      return after;
    });
  }
}
