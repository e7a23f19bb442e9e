import type { Pool } from 'pg';
import { prismaFor, type Queryable } from './transactor';

/** api_keys.role (a Postgres enum). What each role may do is decided in apps/api/src/auth/principal.ts. */
export type ApiKeyRole = 'admin' | 'auditor' | 'account';

export interface ApiKeyRecord {
  id: string;
  prefix: string;
  /** sha256 hex of the whole key. The key itself is never stored. */
  secretHash: string;
  role: ApiKeyRole;
  accountId: string | null;
  name: string | null;
  createdByKeyId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export type NewApiKey = Pick<ApiKeyRecord, 'id' | 'prefix' | 'secretHash' | 'role' | 'accountId' | 'name' | 'createdByKeyId'>;

const SELECT = {
  id: true,
  prefix: true,
  secretHash: true,
  role: true,
  accountId: true,
  name: true,
  createdByKeyId: true,
  createdAt: true,
  revokedAt: true,
  lastUsedAt: true,
} as const;

/** API keys (Prisma). */
export class ApiKeysRepository {
  constructor(private readonly pool: Pool) {}

  /** undefined when the prefix is taken (for the bootstrap key: it already exists). */
  async createApiKey(k: NewApiKey, q: Queryable = this.pool): Promise<ApiKeyRecord | undefined> {
    // skipDuplicates is ON CONFLICT DO NOTHING: a taken prefix does not abort the caller's transaction.
    const [created] = await prismaFor(this.pool, q).apiKey.createManyAndReturn({
      data: [{ id: k.id, prefix: k.prefix, secretHash: k.secretHash, role: k.role, accountId: k.accountId, name: k.name, createdByKeyId: k.createdByKeyId }],
      skipDuplicates: true,
      select: SELECT,
    });
    return created;
  }

  /** The prefix is unique and indexed: authentication looks a key up by it, then compares hashes. */
  async getApiKeyByPrefix(prefix: string): Promise<ApiKeyRecord | undefined> {
    return (await prismaFor(this.pool, this.pool).apiKey.findUnique({ where: { prefix }, select: SELECT })) ?? undefined;
  }

  async getApiKey(id: string, q: Queryable = this.pool, forUpdate = false): Promise<ApiKeyRecord | undefined> {
    const db = prismaFor(this.pool, q);
    if (forUpdate) await db.$executeRaw`SELECT 1 FROM api_keys WHERE id = ${id} FOR UPDATE`;
    return (await db.apiKey.findUnique({ where: { id }, select: SELECT })) ?? undefined;
  }

  /** Newest first; `before` is the previous page's last (created_at, id). */
  async listApiKeys(filter: { accountId?: string; limit: number; before?: { createdAt: Date; id: string } }): Promise<ApiKeyRecord[]> {
    const { before } = filter;
    return prismaFor(this.pool, this.pool).apiKey.findMany({
      where: {
        accountId: filter.accountId,
        // (created_at, id) < (before.createdAt, before.id)
        ...(before && { OR: [{ createdAt: { lt: before.createdAt } }, { createdAt: before.createdAt, id: { lt: before.id } }] }),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: filter.limit,
      select: SELECT,
    });
  }

  /** Idempotent: a revoked key keeps its first revocation time. */
  async revokeApiKey(id: string, q: Queryable = this.pool): Promise<ApiKeyRecord | undefined> {
    const db = prismaFor(this.pool, q);
    const [revoked] = await db.apiKey.updateManyAndReturn({ where: { id, revokedAt: null }, data: { revokedAt: new Date() }, select: SELECT });
    return revoked ?? (await db.apiKey.findUnique({ where: { id }, select: SELECT })) ?? undefined;
  }

  async recordUse(id: string, at: Date): Promise<void> {
    await prismaFor(this.pool, this.pool).apiKey.updateMany({
      where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: at } }] },
      data: { lastUsedAt: at },
    });
  }
}
