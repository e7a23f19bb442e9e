import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiError } from '../common/api-error';

export type Role = 'admin' | 'account';

/** Who is calling: resolved from the bearer key by the auth guard and attached to the request. */
export interface Principal {
  keyId: string;
  prefix: string;
  role: Role;
  /** Set for account keys; null for admin keys. */
  accountId: string | null;
}

export const ROLES_KEY = 'tokenmeter:roles';
export const PUBLIC_KEY = 'tokenmeter:public';

/** Roles allowed on a route. Routes without @Roles and without @Public are admin-only. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** No API key needed (health, metrics, docs, Stripe webhooks, HTTP ingest with its own token). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<{ principal?: Principal }>().principal;
  if (!principal) throw new ApiError(401, 'unauthorized', 'missing or invalid API key');
  return principal;
});

/**
 * The account whose data a request may see. An account key sees only its own account; naming
 * another one answers 404, exactly as for an account that does not exist, so keys cannot probe
 * which accounts exist. An admin must name the account with `account_id`.
 */
export function scopeAccount(principal: Principal, requestedAccountId: string | undefined): string {
  if (principal.role === 'admin') {
    if (!requestedAccountId) {
      throw new ApiError(400, 'validation_failed', 'account_id is required with an admin key', { field: 'account_id' });
    }
    return requestedAccountId;
  }
  if (requestedAccountId !== undefined && requestedAccountId !== principal.accountId) {
    throw new ApiError(404, 'not_found', 'account not found');
  }
  return principal.accountId!;
}
