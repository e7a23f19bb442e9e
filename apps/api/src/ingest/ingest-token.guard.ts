import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request } from 'express';
import { CONFIG, type TokenmeterConfig } from '@tokenmeter/config';
import { ApiError } from '../common/api-error';

/** HTTP ingest is for the gateway only: a bearer token from configuration, compared in constant time. */
@Injectable()
export class IngestTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(CONFIG) config: TokenmeterConfig) {
    this.expected = digest(config.api.ingestToken);
  }

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new ApiError(401, 'unauthorized', 'missing or invalid ingest token');
    }
    return true;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
