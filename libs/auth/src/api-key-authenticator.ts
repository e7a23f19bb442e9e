import type { ApiKeyRecord, ApiKeysRepository } from '@tokenmeter/db';
import { hashApiKey, hashesEqual, prefixOfApiKey } from './api-key-secret';
import type { Principal } from './roles';

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'invalid' | 'revoked' };

interface CachedKey {
  record: Pick<ApiKeyRecord, 'id' | 'prefix' | 'secretHash' | 'role' | 'accountId' | 'revokedAt'>;
  expiresAtMs: number;
}

export interface AuthenticatorOptions {
  /** How long a key row is trusted without re-reading it: the bound on revocation delay across processes. */
  cacheTtlMs: number;
  /** last_used_at is written at most this often per key. */
  lastUsedIntervalMs: number;
  maxCachedKeys: number;
}

const DEFAULTS: AuthenticatorOptions = { cacheTtlMs: 5_000, lastUsedIntervalMs: 60_000, maxCachedKeys: 10_000 };

/**
 * Resolves a bearer key to a Principal.
 *
 * Caching: key rows are cached by prefix for 5 s, so a busy dashboard costs one indexed query per
 * key per 5 s, not one per request. A revocation through this process drops the entry at once
 * (`forget`); one made by another process or the CLI takes effect within the TTL. Unknown
 * prefixes are never cached (no memory growth from garbage keys; the lookup is one index probe).
 * The hash is compared on every request, in constant time, so the cache never accepts a wrong secret.
 *
 * last_used_at is written fire-and-forget at most once a minute per key per process: it answers
 * "is this key still in use?", which needs minutes, not milliseconds.
 */
export class ApiKeyAuthenticator {
  private readonly cache = new Map<string, CachedKey>();
  private readonly lastUseWrittenMs = new Map<string, number>();
  private readonly options: AuthenticatorOptions;

  constructor(
    private readonly keys: ApiKeysRepository,
    options: Partial<AuthenticatorOptions> = {},
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  async authenticate(key: string): Promise<AuthResult> {
    const prefix = prefixOfApiKey(key);
    if (prefix === undefined) return { ok: false, reason: 'invalid' };
    const record = await this.lookup(prefix);
    if (!record || !hashesEqual(hashApiKey(key), record.secretHash)) return { ok: false, reason: 'invalid' };
    if (record.revokedAt !== null) return { ok: false, reason: 'revoked' };
    this.recordUse(record.id);
    return { ok: true, principal: { keyId: record.id, prefix: record.prefix, role: record.role, accountId: record.accountId } };
  }

  /** Drops a key from the cache (after a revocation in this process). */
  forget(prefix: string): void {
    this.cache.delete(prefix);
  }

  private async lookup(prefix: string): Promise<CachedKey['record'] | undefined> {
    const nowMs = this.now();
    const cached = this.cache.get(prefix);
    if (cached && cached.expiresAtMs > nowMs) return cached.record;
    const record = await this.keys.getApiKeyByPrefix(prefix);
    if (!record) {
      this.cache.delete(prefix);
      return undefined;
    }
    // Crude bound: a full cache starts over rather than tracking recency; refills cost one query per key.
    if (this.cache.size >= this.options.maxCachedKeys) this.cache.clear();
    this.cache.set(prefix, { record, expiresAtMs: nowMs + this.options.cacheTtlMs });
    return record;
  }

  private recordUse(keyId: string): void {
    const nowMs = this.now();
    const last = this.lastUseWrittenMs.get(keyId);
    if (last !== undefined && nowMs - last < this.options.lastUsedIntervalMs) return;
    if (this.lastUseWrittenMs.size >= this.options.maxCachedKeys) this.lastUseWrittenMs.clear();
    this.lastUseWrittenMs.set(keyId, nowMs);
    this.keys.recordUse(keyId, new Date(nowMs)).catch(this.onError);
  }
}
