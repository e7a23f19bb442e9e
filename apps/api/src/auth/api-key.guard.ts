import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ApiError } from '../common/api-error';
import { requestIdOf } from '../common/actor';
import { ApiKeyAuthenticator } from './api-key-authenticator';
import { PUBLIC_KEY, ROLES_KEY, type Principal, type Role } from './principal';

/**
 * The global guard (APP_GUARD): every route needs `Authorization: Bearer <api key>` unless it is
 * @Public. Missing, unknown or revoked key: 401. A key whose role the route does not allow: 403.
 * Routes without @Roles are admin-only, so forgetting the decorator fails closed.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: ApiKeyAuthenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<Request & { principal?: Principal; requestId?: string }>();
    requestIdOf(req);
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;

    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match) throw new ApiError(401, 'unauthorized', 'missing or invalid API key (expected "Authorization: Bearer <key>")');
    const result = await this.authenticator.authenticate(match[1]);
    if (!result.ok) {
      throw new ApiError(401, 'unauthorized', result.reason === 'revoked' ? 'API key has been revoked' : 'missing or invalid API key');
    }
    const allowed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets) ?? ['admin'];
    if (!allowed.includes(result.principal.role)) {
      throw new ApiError(403, 'forbidden', `this route needs a key with role ${allowed.join(' or ')}`);
    }
    req.principal = result.principal;
    return true;
  }
}
