import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { ApiError } from '../common/api-error';
import { requestIdOf } from '../common/actor';
import { ApiKeyAuthenticator } from '@tokenmeter/auth';
import { AuthFailureThrottle, refuseIfThrottled } from './auth-failure-throttle';
import { mayCall, PUBLIC_KEY, ROLES_KEY, type Principal, type Role } from './principal';

/**
 * The global guard (APP_GUARD): every route needs `Authorization: Bearer <api key>` unless it is
 * @Public. Missing, unknown or revoked key: 401, counted against the client address; an address
 * over the limit gets 429 before its key is even looked up. A key whose role the route does not
 * allow: 403 (see mayCall: auditors read what admins read). Routes without @Roles are admin-only,
 * so forgetting the decorator fails closed.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: ApiKeyAuthenticator,
    private readonly throttle: AuthFailureThrottle,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { principal?: Principal; requestId?: string }>();
    requestIdOf(req);
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;

    refuseIfThrottled(this.throttle, req, http.getResponse<Response>());
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match) {
      this.throttle.recordFailure(req.ip);
      throw new ApiError(401, 'unauthorized', 'missing or invalid API key (expected "Authorization: Bearer <key>")');
    }
    const result = await this.authenticator.authenticate(match[1]);
    if (!result.ok) {
      this.throttle.recordFailure(req.ip);
      throw new ApiError(401, 'unauthorized', result.reason === 'revoked' ? 'API key has been revoked' : 'missing or invalid API key');
    }
    const { role } = result.principal;
    const allowed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets) ?? ['admin'];
    if (!mayCall(role, allowed, req.method)) {
      throw new ApiError(
        403,
        'forbidden',
        role === 'auditor' && allowed.includes('admin')
          ? 'auditor keys are read-only; this route needs an admin key'
          : `this route needs a key with role ${allowed.join(' or ')}`,
      );
    }
    req.principal = result.principal;
    return true;
  }
}
