import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { type Principal, type Role, ROLES } from '@tokenmeter/auth';
import { ApiError } from '../common/api-error';

// The roles and the Principal are the auth lib's (the CLI creates keys too); the HTTP side of
// them, decorators and the one authorisation rule, is here.
export { ROLES };
export type { Principal, Role };

export const ROLES_KEY = 'tokenmeter:roles';
export const PUBLIC_KEY = 'tokenmeter:public';

/**
 * Roles allowed on a route. Routes without @Roles and without @Public are admin-only. Auditors
 * need not be listed: see mayCall.
 */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** Methods that only read. Express answers HEAD with the GET handler. */
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * The one authorisation rule (applied by the global guard). An auditor may call every route an
 * admin may call, with a read method only; it is decided here rather than by listing `auditor` on
 * each controller, so a read route added later is open to auditors and a write route closed to
 * them without anyone remembering to say so.
 */
export function mayCall(role: Role, allowed: readonly Role[], method: string): boolean {
  if (allowed.includes(role)) return true;
  return role === 'auditor' && allowed.includes('admin') && READ_METHODS.has(method.toUpperCase());
}

/** Admin and auditor keys see every account (and must name one where a route is per account). */
export function seesAllAccounts(principal: Principal): boolean {
  return principal.role === 'admin' || principal.role === 'auditor';
}

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
 * which accounts exist. An admin or auditor must name the account with `account_id`.
 */
export function scopeAccount(principal: Principal, requestedAccountId: string | undefined): string {
  if (seesAllAccounts(principal)) {
    if (!requestedAccountId) {
      throw new ApiError(400, 'validation_failed', `account_id is required with an ${principal.role} key`, { field: 'account_id' });
    }
    return requestedAccountId;
  }
  if (requestedAccountId !== undefined && requestedAccountId !== principal.accountId) {
    throw new ApiError(404, 'not_found', 'account not found');
  }
  return principal.accountId!;
}
