import { Inject, Injectable, Optional } from '@nestjs/common';
import { ConflictError, NotFoundError, ValidationError } from '@tokenmeter/billing';
import {
  AccountsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  Transactor,
  WebSessionsRepository,
  type ApiKeyRecord,
} from '@tokenmeter/db';
import type { Actor } from '../common/actor';
import { ApiKeyAuthenticator } from './api-key-authenticator';
import { apiKeyJson } from './api-key-json';
import { generateApiKey, hashApiKey, hashesEqual, newApiKeyId, prefixOfApiKey } from './api-key-secret';
import type { Role } from './principal';

export interface NewApiKeyInput {
  role: Role;
  accountId: string | null;
  name: string | null;
}

/** What may be shown about a key: never its secret or hash. */
export type ApiKeyView = Omit<ApiKeyRecord, 'secretHash'>;

export function viewOf(record: ApiKeyRecord): ApiKeyView {
  const { secretHash: _secretHash, ...view } = record;
  return view;
}

/** Creates, lists and revokes API keys; used by the admin API and by the CLI (without Nest). */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
    private readonly webSessions: WebSessionsRepository,
    @Optional() @Inject(ApiKeyAuthenticator) private readonly authenticator?: ApiKeyAuthenticator,
  ) {}

  /** Returns the key itself exactly once; only its sha256 is stored. */
  async createApiKey(input: NewApiKeyInput, actor: Actor): Promise<{ key: string; record: ApiKeyView }> {
    if (input.role === 'account' && !input.accountId) throw new ValidationError('account_id', 'is required for an account key');
    if (input.role !== 'account' && input.accountId) throw new ValidationError('account_id', `must not be set for an ${input.role} key`);
    return this.transactor.run(async (q) => {
      if (input.accountId && !(await this.accounts.getAccount(input.accountId, q))) {
        throw new NotFoundError('account', input.accountId);
      }
      const generated = generateApiKey();
      const record = await this.keys.createApiKey(
        {
          id: newApiKeyId(),
          prefix: generated.prefix,
          secretHash: generated.secretHash,
          role: input.role,
          accountId: input.accountId,
          name: input.name,
          createdByKeyId: actor.keyId,
        },
        q,
      );
      // 8 random base62 characters: a prefix collision is ~1 in 10^14 per pair; say so rather than retry silently.
      if (!record) throw new ConflictError('generated key prefix already exists; try again');
      const view = viewOf(record);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'api_key.create', targetType: 'api_key', targetId: record.id, before: null, after: apiKeyJson(view), requestId: actor.requestId },
        q,
      );
      return { key: generated.key, record: view };
    });
  }

  async listApiKeys(filter: { accountId?: string; limit: number; before?: { createdAt: Date; id: string } }): Promise<ApiKeyView[]> {
    return (await this.keys.listApiKeys(filter)).map(viewOf);
  }

  /** Idempotent: revoking a revoked key answers it unchanged and writes no second audit entry. */
  async revokeApiKey(id: string, actor: Actor): Promise<ApiKeyView> {
    const revoked = await this.transactor.run(async (q) => {
      const before = await this.keys.getApiKey(id, q, true);
      if (!before) throw new NotFoundError('api_key', id);
      if (before.revokedAt !== null) return before;
      const after = (await this.keys.revokeApiKey(id, q))!;
      // A revoked key's dashboard sessions end with it, in the same transaction.
      await this.webSessions.endWebSessionsOfKey(id, q);
      await this.audit.append(
        { actorKeyId: actor.keyId, action: 'api_key.revoke', targetType: 'api_key', targetId: id, before: apiKeyJson(viewOf(before)), after: apiKeyJson(viewOf(after)), requestId: actor.requestId },
        q,
      );
      return after;
    });
    // Effective at once in this process; other processes within the authenticator's cache TTL.
    this.authenticator?.forget(revoked.prefix);
    return viewOf(revoked);
  }

  /**
   * TOKENMETER_ADMIN_KEY: makes sure an admin key with exactly this secret exists. Safe to run on
   * every boot and from several API processes at once (the unique prefix decides). A key that an
   * admin has revoked stays revoked: revocation is a deliberate act, a restart is not.
   */
  async ensureBootstrapAdminKey(secret: string): Promise<{ status: 'created' | 'exists' | 'revoked'; record: ApiKeyView }> {
    const prefix = prefixOfApiKey(secret);
    if (prefix === undefined) throw new ValidationError('TOKENMETER_ADMIN_KEY', 'is not a usable API key (at least 24 characters, no whitespace)');
    const secretHash = hashApiKey(secret);
    const check = (existing: ApiKeyRecord) => {
      if (!hashesEqual(existing.secretHash, secretHash) || existing.role !== 'admin') {
        throw new ConflictError(`TOKENMETER_ADMIN_KEY: another key already uses prefix ${prefix}; generate a new admin key`);
      }
      return { status: existing.revokedAt ? ('revoked' as const) : ('exists' as const), record: viewOf(existing) };
    };
    const existing = await this.keys.getApiKeyByPrefix(prefix);
    if (existing) return check(existing);
    const created = await this.transactor.run(async (q) => {
      const record = await this.keys.createApiKey(
        { id: newApiKeyId(), prefix, secretHash, role: 'admin', accountId: null, name: 'TOKENMETER_ADMIN_KEY', createdByKeyId: null },
        q,
      );
      if (record) {
        await this.audit.append(
          { actorKeyId: null, action: 'api_key.bootstrap', targetType: 'api_key', targetId: record.id, before: null, after: apiKeyJson(viewOf(record)), requestId: null },
          q,
        );
      }
      return record;
    });
    if (created) return { status: 'created', record: viewOf(created) };
    // Another process created it between our read and our insert.
    return check((await this.keys.getApiKeyByPrefix(prefix))!);
  }
}
