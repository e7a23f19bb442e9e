import type { NestExpressApplication } from '@nestjs/platform-express';
import type { TokenmeterConfig } from '@tokenmeter/config';
import { json, type NextFunction, type Request, type RequestHandler, type Response, urlencoded } from 'express';
import compression from 'compression';
import helmet from 'helmet';
import multer from 'multer';
import { ApiKeyAuthenticator } from '@tokenmeter/auth';
import { ApiError } from './common/api-error';
import { IngestTokenGuard } from './ingest/ingest-token.guard';
import { sessionTokenOf } from './web/web-session.guard';
import { WebSessionsService } from './web/web-sessions.service';

const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * JSON body limits (docs/api.md). A larger body is refused with 413 `payload_too_large` while it
 * is being read, before anything parses it (ApiErrorFilter gives it the usual error shape).
 */
export const BODY_LIMITS = {
  /** POST /v1/events: up to 1000 events with up to 4 KiB of metadata each. */
  ingest: 8 * MIB,
  /** POST /webhooks/stripe: a Stripe event embeds a whole object (an invoice with its first lines); Stripe retries a 413 forever. */
  stripeWebhook: 1 * MIB,
  /** Every other route: admin writes are a few fields. */
  default: 64 * KIB,
  /** Dashboard forms (/app, application/x-www-form-urlencoded): a few fields too. */
  form: 64 * KIB,
  /**
   * A price map to import (POST /admin/prices/import and its dashboard page): LiteLLM's whole
   * model_prices_and_context_window.json is ~3.5 MB (4,900 models in 1.110.2).
   */
  priceImport: 8 * MIB,
} as const;

/** The routes that take a price map, JSON or dashboard form (the file upload is multipart). */
const PRICE_IMPORT_PATHS = new Set(['/admin/prices/import', '/app/admin/prices/import', '/app/admin/prices/import/apply']);

/** Swagger UI (served from swagger-ui-dist under /docs): its HTML carries inline <style> blocks and style attributes. */
const DOCS_PATH = /^\/docs(\/|$)/i;

/**
 * Same-origin only: scripts, styles, fonts, XHR and forms from this origin, images also as data:
 * URIs (Swagger UI's icons), nothing may frame us, no plugins. This already fits the planned
 * server-rendered dashboard under /app (same origin, no CDN, no inline script).
 * No `upgrade-insecure-requests` (helmet's default): the API is served over plain HTTP in
 * development and behind a TLS proxy in production, where browsers already use https.
 */
const CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
};

function securityHeaders(styleSrc: string[]): RequestHandler {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { ...CSP, 'style-src': styleSrc } },
    // frame-ancestors 'none' says it for current browsers; X-Frame-Options for older ones.
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  }) as RequestHandler;
}

/**
 * HTTP hardening that must apply to every response, 404s and body-parser errors included, so it
 * is installed as the first Express middleware (before body parsing and routing):
 * - security headers (helmet; the CSP above, relaxed for /docs only to allow inline styles);
 * - `Cache-Control: no-store` outside /docs: responses carry account data, keys (once) or errors,
 *   none of which a browser or shared cache should keep;
 * - JSON body parsing with per-route size limits; the Stripe webhook also keeps the exact bytes on
 *   req.rawBody (the same buffer, no copy), since its signature is computed over them; HTTP
 *   ingest's up to 8 MiB are read only if its token is right and its address not refused;
 * - `trust proxy` from API_TRUST_PROXY, which decides req.ip (the address the failed-
 *   authentication throttle counts) behind a load balancer.
 */
export function applyHttpSecurity(app: NestExpressApplication, config: TokenmeterConfig): void {
  app.set('trust proxy', config.api.trustProxy);
  app.disable('x-powered-by');
  const strict = securityHeaders(["'self'"]);
  const docs = securityHeaders(["'self'", "'unsafe-inline'"]);
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (DOCS_PATH.test(req.path)) {
      docs(req, res, next);
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    strict(req, res, next);
  });

  // Dashboard pages and their stylesheet travel compressed (tables of numbers shrink ~10x); the
  // JSON API is left as it was (its clients are servers on the same network).
  const compress = compression({ threshold: 1024 }) as RequestHandler;
  app.use((req: Request, res: Response, next: NextFunction) => (isUnder(req.path.toLowerCase(), '/app') ? compress(req, res, next) : next()));

  const keepRawBody = (req: Request & { rawBody?: Buffer }, _res: Response, buffer: Buffer) => {
    req.rawBody = buffer;
  };
  const parsers = {
    ingest: json({ limit: BODY_LIMITS.ingest }),
    stripeWebhook: json({ limit: BODY_LIMITS.stripeWebhook, verify: keepRawBody }),
    default: json({ limit: BODY_LIMITS.default }),
    form: urlencoded({ extended: false, limit: BODY_LIMITS.form, parameterLimit: 100 }),
    priceImport: json({ limit: BODY_LIMITS.priceImport }),
    priceImportForm: urlencoded({ extended: false, limit: BODY_LIMITS.priceImport, parameterLimit: 100 }),
    priceImportUpload: multipartUpload(BODY_LIMITS.priceImport),
  };
  const ingestToken = app.get(IngestTokenGuard);
  const authenticator = app.get(ApiKeyAuthenticator);
  const webSessions = app.get(WebSessionsService);
  /** Whether the request's bearer key (or, for a page, its session) is an admin's: the guards decide the answer. */
  const callerIsAdmin = async (req: Request, page: boolean): Promise<boolean> => {
    if (page) {
      const token = sessionTokenOf(req);
      return token !== undefined && (await webSessions.resolve(token))?.role === 'admin';
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match) return false;
    const result = await authenticator.authenticate(match[1]);
    return result.ok && result.principal.role === 'admin';
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    // Express routes case-insensitively, with or without a trailing slash: match the same way.
    const path = req.path.toLowerCase();
    if (isUnder(path, '/v1/events')) {
      // A request the ingest guard will refuse reaches it unparsed (its body is never read).
      if (!ingestToken.wouldAccept(req)) return next();
      return parsers.ingest(req, res, next);
    }
    if (isUnder(path, '/webhooks/stripe')) return parsers.stripeWebhook(req, res, next);
    if (PRICE_IMPORT_PATHS.has(path.replace(/\/$/, ''))) {
      // Up to 8 MiB is read only for an admin; anyone else reaches the route's guard unparsed
      // and is refused there (401, 403 or the sign-in page), as a wrong ingest token is.
      const page = isUnder(path, '/app');
      return void callerIsAdmin(req, page).then((admin) => {
        if (!admin) return next();
        if (!page) return parsers.priceImport(req, res, next);
        return req.is('multipart/form-data') ? parsers.priceImportUpload(req, res, next) : parsers.priceImportForm(req, res, next);
      }, next);
    }
    if (isUnder(path, '/app')) return parsers.form(req, res, next);
    return parsers.default(req, res, next);
  });
}

/**
 * The dashboard's file upload: one file held in memory (up to `limit`) and a few text fields on
 * req.body, parsed before the session guard so it can check the form's CSRF field as for any
 * other form. Multer's own errors get the API's error shape (413 for a file over the limit).
 */
function multipartUpload(limit: number): RequestHandler {
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: limit, files: 1, fields: 20, fieldSize: 64 * KIB } }).single('file');
  return (req, res, next) =>
    upload(req, res, (err?: unknown) => {
      if (!(err instanceof multer.MulterError)) return next(err);
      next(err.code === 'LIMIT_FILE_SIZE' ? new ApiError(413, 'payload_too_large', `the file is larger than ${limit / MIB} MiB`) : new ApiError(400, 'bad_request', `upload refused: ${err.message}`));
    });
}

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}
