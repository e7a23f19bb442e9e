import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { NotFoundError } from '@tokenmeter/billing';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { AccountsRepository, AuditLogRepository, DashboardLinksRepository, Transactor, WebSessionsRepository, type WebSessionRecord } from '@tokenmeter/db';
import { ApiKeyAuthenticator } from '../auth/api-key-authenticator';
import type { Principal } from '../auth/principal';
import type { Actor } from '../common/actor';

/** What the cookie carries: 32 random bytes, base64url. Only its sha256 is stored. */
function newToken(): { token: string; tokenHash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface StartedSession {
  /** The cookie value (never stored). */
  token: string;
  session: WebSessionRecord;
}

/** The principal a session acts as: the same type the API-key guard attaches, so pages reuse the API's rules. */
export function principalOf(session: WebSessionRecord): Principal {
  return {
    keyId: session.keyId ?? `web_session:${session.id}`,
    prefix: session.keyId ? 'web session' : 'dashboard link',
    role: session.role,
    accountId: session.accountId,
  };
}

/**
 * Web dashboard sessions and one-time dashboard links. A session starts from a valid API key
 * (sign-in form) or from a dashboard link (one account, once); the browser only ever holds a
 * random token in an HttpOnly cookie, never the API key.
 */
@Injectable()
export class WebSessionsService {
  constructor(
    @Inject(CONFIG) private readonly config: TokenmeterConfig,
    private readonly sessions: WebSessionsRepository,
    private readonly links: DashboardLinksRepository,
    private readonly accounts: AccountsRepository,
    private readonly audit: AuditLogRepository,
    private readonly transactor: Transactor,
    private readonly authenticator: ApiKeyAuthenticator,
  ) {}

  /** undefined for a wrong, unknown or revoked key (the caller counts it as a failed authentication). */
  async signIn(apiKey: string): Promise<StartedSession | undefined> {
    const result = await this.authenticator.authenticate(apiKey.trim());
    if (!result.ok) return undefined;
    const { keyId, role, accountId } = result.principal;
    return this.start({ role, accountId, keyId });
  }

  async resolve(token: string): Promise<WebSessionRecord | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    return this.sessions.getLiveWebSession(hashToken(token));
  }

  async signOut(token: string): Promise<void> {
    await this.sessions.endWebSession(hashToken(token));
  }

  /** A link that signs one browser in as `accountId`, once, until it expires. Audited. */
  async createDashboardLink(accountId: string, actor: Actor): Promise<{ url: string; expiresAt: Date }> {
    const { token, tokenHash } = newToken();
    const expiresAt = new Date(Date.now() + this.config.api.web.linkMinutes * 60_000);
    const link = await this.transactor.run(async (q) => {
      if (!(await this.accounts.getAccount(accountId, q))) throw new NotFoundError('account', accountId);
      const created = await this.links.createDashboardLink(
        { id: `dl_${randomBytes(12).toString('hex')}`, tokenHash, accountId, createdByKeyId: actor.keyId, expiresAt },
        q,
      );
      await this.audit.append(
        {
          actorKeyId: actor.keyId,
          action: 'dashboard_link.create',
          targetType: 'account',
          targetId: accountId,
          before: null,
          // Never the token: the audit log is readable by auditors.
          after: { id: created.id, expires_at: created.expiresAt.toISOString() },
          requestId: actor.requestId,
        },
        q,
      );
      return created;
    });
    return { url: `${this.config.api.web.publicBaseUrl}/app/link/${token}`, expiresAt: link.expiresAt };
  }

  /** Opens a link: the first open of an unexpired link starts an account session; any other gets undefined. */
  async openDashboardLink(token: string): Promise<StartedSession | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const link = await this.links.consumeDashboardLink(hashToken(token));
    if (!link) return undefined;
    return this.start({ role: 'account', accountId: link.accountId, keyId: null });
  }

  private async start(who: Pick<WebSessionRecord, 'role' | 'accountId' | 'keyId'>): Promise<StartedSession> {
    const { token, tokenHash } = newToken();
    const session = await this.sessions.createWebSession({
      id: `ws_${randomBytes(12).toString('hex')}`,
      tokenHash,
      ...who,
      csrfToken: randomBytes(24).toString('base64url'),
      expiresAt: new Date(Date.now() + this.config.api.web.sessionHours * 3_600_000),
    });
    return { token, session };
  }
}
