import crypto = require('node:crypto');
import type { ExecutionContext } from '@nestjs/common';
import { loadConfig } from '@tokenmeter/config';
import { ApiError } from '../common/api-error';
import { AuthFailureThrottle } from '../auth/auth-failure-throttle';
import { IngestTokenGuard } from './ingest-token.guard';

const TOKEN = 'ingest-token-for-the-guard-spec';

function contextWith(authorization: string | undefined, ip = '10.0.0.1'): ExecutionContext {
  const req = { headers: authorization === undefined ? {} : { authorization }, ip };
  const res = { setHeader: () => undefined };
  return { switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }) } as unknown as ExecutionContext;
}

describe('IngestTokenGuard', () => {
  const sut = (limit = 1000) =>
    new IngestTokenGuard(loadConfig({ TOKENMETER_INGEST_TOKEN: TOKEN }), new AuthFailureThrottle({ limit, windowMs: 60_000, maxAddresses: 100 }));
  afterEach(() => jest.restoreAllMocks());

  it('compares sha256 digests of both tokens in constant time, so any length is compared the same way', () => {
    const compare = jest.spyOn(crypto, 'timingSafeEqual');
    const guard = sut();
    expect(guard.canActivate(contextWith(`Bearer ${TOKEN}`))).toBe(true);
    // Shorter, longer and same-length-but-wrong tokens: a raw timingSafeEqual would throw on the first two.
    for (const wrong of ['x', `${TOKEN}x`.repeat(20), `${TOKEN.slice(0, -1)}X`]) {
      expect(() => guard.canActivate(contextWith(`Bearer ${wrong}`))).toThrow(ApiError);
    }
    expect(compare).toHaveBeenCalledTimes(4);
    for (const [x, y] of compare.mock.calls) expect([(x as Buffer).length, (y as Buffer).length]).toEqual([32, 32]);
  });

  it('counts wrong or missing tokens against the address and then answers 429 with Retry-After', () => {
    const guard = sut(2);
    const status = (ctx: ExecutionContext) => {
      try {
        guard.canActivate(ctx);
        return 200;
      } catch (err) {
        return (err as ApiError).getStatus();
      }
    };
    expect(status(contextWith(undefined))).toBe(401);
    expect(status(contextWith('Bearer nope'))).toBe(401);
    expect(status(contextWith(`Bearer ${TOKEN}`))).toBe(429);
    expect(status(contextWith(`Bearer ${TOKEN}`, '10.0.0.2'))).toBe(200);
  });

  it('wouldAccept (asked before the body is read) counts nothing', () => {
    const guard = sut(2);
    const request = (ctx: ExecutionContext) => ctx.switchToHttp().getRequest();
    for (let i = 0; i < 10; i++) expect(guard.wouldAccept(request(contextWith('Bearer nope')))).toBe(false);
    expect(guard.wouldAccept(request(contextWith(`Bearer ${TOKEN}`)))).toBe(true);
    expect(guard.canActivate(contextWith(`Bearer ${TOKEN}`))).toBe(true);
  });
});
