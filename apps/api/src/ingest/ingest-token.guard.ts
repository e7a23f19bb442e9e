import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { ApiError } from '../common/api-error';
import { AuthFailureThrottle, refuseIfThrottled } from '../auth/auth-failure-throttle';

/**
 * HTTP ingest is for the gateway only: a bearer token from configuration. Both sides are hashed
 * first, so timingSafeEqual compares two 32-byte digests and neither the token's length nor its
 * content shows in the time taken. Wrong tokens count against the client address like bad API keys.
 */
@Injectable()
export class IngestTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(
    @Inject(CONFIG) config: TokenmeterConfig,
    private readonly throttle: AuthFailureThrottle,
  ) {
    this.expected = digest(config.api.ingestToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    this.authenticate(http.getRequest<Request>(), http.getResponse<Response>());
    return true;
  }

  /**
   * Throws 429 (address refused) or 401 (missing or wrong token). Also run by applyHttpSecurity
   * before POST /v1/events's body (up to 8 MiB) is read, so a wrong token or a refused address
   * costs no JSON parsing; this guard stays on the route so it fails closed if that path changes.
   */
  authenticate(req: Request, res: Response): void {
    refuseIfThrottled(this.throttle, req, res);
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      this.throttle.recordFailure(req.ip);
      throw new ApiError(401, 'unauthorized', 'missing or invalid ingest token');
    }
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
