import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@tokenmeter/config';
import type { SpendAuthorizer } from '@tokenmeter/limits';
import { AuthFailureThrottle } from '../auth/auth-failure-throttle';
import { ApiError } from '../common/api-error';
import { parseInput } from '../common/validation';
import { BODY_LIMITS } from '../http-security';
import type { IngestTokenGuard } from '../ingest/ingest-token.guard';
import type { HttpMetrics } from '../observability/http-metrics';
import { answerAuthorize, authorizeBody, type ErrorJson } from './authorize-answer';

const PATH = '/v1/spend/authorize';
const JSON_TYPE = /^application\/json\s*(;|$)/i;

export interface AuthorizeListenerOptions {
  port: number;
  host: string;
}

/**
 * POST /v1/spend/authorize on its own port (AUTHORIZE_PORT), on plain node:http: no Express, no
 * Nest pipeline (helmet, routing, guards, pipes, interceptors, metrics middleware), which cost far
 * more than the check itself (docs/limits.md, "The lean port"). The same SpendAuthorizer, the same
 * body schema through the same parseInput, the same answers (answerAuthorize), the same ingest-token
 * check and failed-authentication throttle as the Nest route; anything else is 404 or 405. No
 * request log; one latency histogram by status (HttpMetrics, on the API's /metrics).
 *
 * The throttle counts the TCP peer's address: Express's `trust proxy` does not apply here (put the
 * gateway, not a proxy, in front of this port).
 */
export class AuthorizeListener {
  private server: http.Server | undefined;

  constructor(
    private readonly authorizer: SpendAuthorizer,
    private readonly ingestToken: IngestTokenGuard,
    private readonly throttle: AuthFailureThrottle,
    private readonly metrics: HttpMetrics,
    private readonly log: Logger,
    private readonly options: AuthorizeListenerOptions,
  ) {}

  /** Listens, unless the port is 0; rejects if the port cannot be bound. */
  async start(): Promise<void> {
    if (this.options.port === 0) return;
    const server = http.createServer((req, res) => this.handle(req, res));
    // Keep-alive: a gateway keeps its connections; ours must outlive its idle timeout, not the other way round.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'authorize listener error'));
    this.server = server;
    this.log.info({ port: this.port }, 'authorize listener listening');
  }

  /** The port listened on, or null. */
  get port(): number | null {
    return (this.server?.address() as AddressInfo | null)?.port ?? null;
  }

  /** Stops accepting, closes idle keep-alive connections, and the rest after their request (at most 1 s). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), 1000);
    await closed;
    clearTimeout(force);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const startedAt = process.hrtime.bigint();
    res.once('finish', () => this.metrics.observeAuthorizePort(res.statusCode, Number(process.hrtime.bigint() - startedAt) / 1e9));
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // Like Express: case-insensitive, with or without a trailing slash.
    const path = (q === -1 ? url : url.slice(0, q)).toLowerCase();
    if (path !== PATH && path !== `${PATH}/`) {
      return this.refuse(req, res, 404, 'not_found', `Cannot ${req.method} ${url}`);
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return this.refuse(req, res, 405, 'method_not_allowed', `${req.method} is not allowed here; use POST`);
    }
    const address = req.socket.remoteAddress;
    const waitMs = this.throttle.retryAfterMs(address);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      res.setHeader('Retry-After', String(seconds));
      const message = `too many failed authentications from this address; retry in ${seconds} s`;
      return this.refuse(req, res, 429, 'too_many_requests', message, { retry_after_seconds: seconds });
    }
    // The token before the body: a wrong one costs no reading or parsing.
    if (!this.ingestToken.authorizationMatches(req.headers.authorization)) {
      this.throttle.recordFailure(address);
      return this.refuse(req, res, 401, 'unauthorized', 'missing or invalid ingest token');
    }
    const limit = BODY_LIMITS.default;
    if (Number(req.headers['content-length'] ?? 0) > limit) return this.tooLarge(res);
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        this.tooLarge(res);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) this.answer(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', () => res.destroy());
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void {
    try {
      // As the Nest route's JSON parser: a body that is not application/json is no body at all.
      let body: unknown;
      if (JSON_TYPE.test(req.headers['content-type'] ?? '')) {
        const text = raw.toString('utf8');
        const start = /\S/.exec(text);
        if (start === null) body = {};
        else {
          // Strict, like body-parser: only an object or an array is JSON here.
          if (start[0] !== '{' && start[0] !== '[') return this.send(res, 400, invalidJson(`Unexpected token '${start[0]}' at position ${start.index}`));
          try {
            body = JSON.parse(text);
          } catch (err) {
            return this.send(res, 400, invalidJson((err as Error).message));
          }
        }
      }
      const answer = answerAuthorize(this.authorizer, parseInput(authorizeBody, body, 'body'));
      this.send(res, answer.status, answer.json, answer.headers);
    } catch (err) {
      if (err instanceof ApiError) return this.send(res, err.getStatus(), err.getResponse() as ErrorJson);
      this.log.error({ err }, 'unhandled error');
      this.send(res, 500, { error: { code: 'internal', message: 'internal error', details: null } });
    }
  }

  private refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, code: string, message: string, details: unknown = null): void {
    // Its body is never read: discarded, so the keep-alive connection stays usable.
    req.resume();
    this.send(res, status, { error: { code, message, details } });
  }

  private tooLarge(res: http.ServerResponse): void {
    // The rest of the body is not read: this connection cannot carry another request.
    res.setHeader('Connection', 'close');
    this.send(res, 413, { error: { code: 'payload_too_large', message: 'request body is too large', details: null } });
  }

  private send(res: http.ServerResponse, status: number, json: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(json);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    });
    res.end(text);
  }
}

function invalidJson(detail: string): ErrorJson {
  return { error: { code: 'invalid_json', message: `request body is not valid JSON: ${detail}`, details: null } };
}
