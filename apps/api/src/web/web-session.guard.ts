import { applyDecorators, type CanActivate, type ExecutionContext, Injectable, SetMetadata, UseGuards } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import { parse as parseCookie } from 'cookie';
import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';
import type { WebSessionRecord } from '@tokenmeter/db';
import { mayCall, Public, type Principal, type Role } from '../auth/principal';
import { ApiError } from '../common/api-error';
import { principalOf, WebSessionsService } from './web-sessions.service';

export const SESSION_COOKIE = 'tm_session';
const WEB_ROLES = 'tokenmeter:web-roles';

export type WebRequest = Request & { principal?: Principal; webSession?: WebSessionRecord };

/** Thrown when a page needs a session and there is none: the error filter redirects to sign-in. */
export class SignInRequired extends Error {
  constructor() {
    super('sign in required');
  }
}

/**
 * A controller of dashboard pages: outside the API-key guard (@Public) and the OpenAPI document,
 * behind the session guard, answering HTML. `roles` as for the JSON API (auditors read what admins
 * read; see mayCall). Handlers return the rendered page as a string, which Express sends as
 * text/html; charset=utf-8.
 */
export function WebPages(...roles: Role[]) {
  return applyDecorators(
    Public(),
    ApiExcludeController(),
    SetMetadata(WEB_ROLES, roles),
    UseGuards(WebSessionGuard),
  );
}

/** Pages anyone may open (sign-in, links, assets): still outside the API-key guard and the document. */
export function OpenWebPages() {
  return applyDecorators(Public(), ApiExcludeController());
}

export function sessionTokenOf(req: Request): string | undefined {
  const header = req.headers.cookie;
  return header ? parseCookie(header)[SESSION_COOKIE] : undefined;
}

/**
 * Resolves the session cookie to a principal (the same Principal the API-key guard produces, so
 * pages apply the API's own scoping rules), enforces the page's roles, and for every POST checks
 * the form's CSRF token against the session's and that the request comes from our own pages
 * (Origin). A page another account may not see answers 404, like a missing one.
 */
@Injectable()
export class WebSessionGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: WebSessionsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<WebRequest>();
    const token = sessionTokenOf(req);
    const session = token ? await this.sessions.resolve(token) : undefined;
    if (!session) throw new SignInRequired();
    const principal = principalOf(session);
    req.principal = principal;
    req.webSession = session;
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(WEB_ROLES, [context.getHandler(), context.getClass()]) ?? ['admin'];
    if (!mayCall(principal.role, roles, req.method)) {
      // Read-only auditors trying a write get a clear 403; anyone else is simply not shown the page.
      if (principal.role === 'auditor' && roles.includes('admin')) throw new ApiError(403, 'forbidden', 'Auditor sessions are read-only.');
      throw new ApiError(404, 'not_found', 'This page does not exist.');
    }
    if (req.method === 'POST') assertSameOriginForm(req, session.csrfToken);
    return true;
  }
}

/** A POST from one of our own forms: the Origin (when sent) is ours and the CSRF field matches. */
export function assertSameOriginForm(req: Request, csrfToken: string | null): void {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && new URL(origin).host !== req.headers.host) {
    throw new ApiError(403, 'forbidden', 'This form was not sent from a Tokenmeter page.');
  }
  if (csrfToken === null) return;
  const sent = (req.body as Record<string, unknown> | undefined)?._csrf;
  const a = Buffer.from(typeof sent === 'string' ? sent : '');
  const b = Buffer.from(csrfToken);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new ApiError(403, 'forbidden', 'The form has expired or did not come from this session; reload the page and try again.');
  }
}
