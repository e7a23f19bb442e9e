import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { LOGGER, type Logger } from '@tokenmeter/config';
import { HttpMetrics } from './http-metrics';

export const REQUEST_ID_HEADER = 'x-request-id';

// A caller's request id is kept (so a gateway's id follows the request through our logs) only if
// it is short and plain; anything else could forge log lines or bloat them, and is replaced.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Routes scraped or probed every few seconds: logged at debug so they do not drown the rest. */
const QUIET_ROUTES = new Set(['/metrics', '/health/live', '/health/ready']);

/**
 * Per request: assigns or propagates `x-request-id` (echoed in the response and available to
 * handlers as `req.requestId`), then on completion logs one JSON line (method, route template,
 * status, ms, request id, API key prefix) and records the latency histogram.
 *
 * Never logged: headers (Authorization, the ingest token), query strings and bodies. The key
 * prefix is the public part of a key, shown in key lists, never the secret.
 */
@Injectable()
export class RequestObserverMiddleware implements NestMiddleware {
  constructor(
    @Inject(LOGGER) private readonly log: Logger,
    private readonly metrics: HttpMetrics,
  ) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const startedAt = process.hrtime.bigint();
    // Nest mounts this middleware as a catch-all route, so req.route is that route until a real
    // one matches; still being it at the end means no route matched (a 404).
    const middlewareRoute = req.route;
    const incoming = req.headers[REQUEST_ID_HEADER];
    const requestId = typeof incoming === 'string' && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    (req as Request & { requestId: string }).requestId = requestId;
    res.setHeader(REQUEST_ID_HEADER, requestId);

    const done = () => {
      res.removeListener('finish', done);
      res.removeListener('close', done);
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      // The route template, not the path: ids in paths would explode the metric's label set.
      const matched = req.route && req.route !== middlewareRoute ? req.route : undefined;
      const route = matched?.path ? `${req.baseUrl ?? ''}${String(matched.path)}` : 'unmatched';
      // 'close' before 'finish': the client hung up before the response was complete.
      const status = res.writableFinished ? res.statusCode : 499;
      this.metrics.observe(req.method, route, status, seconds);
      const line = {
        req_id: requestId,
        method: req.method,
        route,
        path: req.path,
        status,
        ms: Math.round(seconds * 1e4) / 10,
        key_prefix: (req as Request & { principal?: { prefix?: string } }).principal?.prefix,
      };
      if (QUIET_ROUTES.has(route)) this.log.debug(line, 'request');
      else this.log.info(line, 'request');
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  }
}
