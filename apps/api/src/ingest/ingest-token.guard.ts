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
    const req = http.getRequest<Request>();
    refuseIfThrottled(this.throttle, req, http.getResponse<Response>());
    if (!this.tokenMatches(req)) {
      this.throttle.recordFailure(req.ip);
      throw new ApiError(401, 'unauthorized', 'missing or invalid ingest token');
    }
    return true;
  }

  /**
   * Whether canActivate will let this request through; counts nothing. applyHttpSecurity reads
   * (up to 8 MiB of) body only for such requests, so a wrong token or a refused address costs no
   * JSON parsing; this guard still answers them, on the route, with its 401 or 429.
   */
  wouldAccept(req: Request): boolean {
    return this.throttle.retryAfterMs(req.ip) === 0 && this.tokenMatches(req);
  }

  private tokenMatches(req: Request): boolean {
    return this.authorizationMatches(req.headers.authorization);
  }

  /** Whether an Authorization header carries the ingest token (also the lean authorize listener's check, AuthorizeListener). */
  authorizationMatches(header: string | undefined): boolean {
    const match = /^Bearer (.+)$/.exec(header ?? '');
    return match !== null && timingSafeEqual(digest(match[1]), this.expected);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
