import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import type { Actor, Principal } from '@tokenmeter/auth';

export type { Actor };

type RequestWithContext = Request & { principal?: Principal; requestId?: string };

/**
 * The request id: the caller's `X-Request-Id` if it is a sane token (so a gateway's id can be
 * followed into the audit log), else one we mint. Kept on the request so every reader agrees.
 */
export function requestIdOf(req: RequestWithContext): string {
  if (!req.requestId) {
    const header = req.headers['x-request-id'];
    req.requestId = typeof header === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : randomUUID();
  }
  return req.requestId;
}

export const CurrentActor = createParamDecorator((_data: unknown, ctx: ExecutionContext): Actor => {
  const req = ctx.switchToHttp().getRequest<RequestWithContext>();
  return { keyId: req.principal?.keyId ?? null, requestId: requestIdOf(req) };
});
