import {
  type ArgumentsHost,
  BadRequestException,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Inject,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { DomainError, NotFoundError, ValidationError } from '@tokenmeter/billing';
import { LOGGER, type Logger } from '@tokenmeter/config';
import { StripeCallError } from '@tokenmeter/stripe';
import { answerPage, isPagePath } from '../web/page-errors';
import { SignInRequired } from '../web/web-session.guard';

/** The one error shape of the API: `{ "error": { "code", "message", "details" } }`. */
export class ApiError extends HttpException {
  constructor(status: number, readonly code: string, message: string, readonly details?: unknown) {
    super({ error: { code, message, details: details ?? null } }, status);
  }
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  502: 'stripe_error',
};

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    const { status, body } = this.answerOf(exception);
    // Dashboard pages get the same answer as a page (or a redirect to sign-in), not as JSON.
    if (isPagePath(req.path) && answerPage(req, res, exception, status, body.error.message)) return;
    res.status(status).json(body);
  }

  private answerOf(exception: unknown): { status: number; body: ErrorBody } {
    if (exception instanceof ApiError) return { status: exception.getStatus(), body: exception.getResponse() as ErrorBody };
    if (exception instanceof DomainError) return domainErrorResponse(exception);
    if (exception instanceof StripeCallError) {
      // Our request to Stripe failed (after retries): the upstream is at fault, not the client.
      return { status: 502, body: { error: { code: 'stripe_error', message: exception.message, details: { retriable: exception.retriable } } } };
    }
    if (isBodyParseError(exception)) {
      const detail = exception instanceof Error ? exception.message : '';
      return { status: 400, body: { error: { code: 'invalid_json', message: `request body is not valid JSON: ${detail}`, details: null } } };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const message = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? exception.message);
      return {
        status,
        body: { error: { code: STATUS_CODES[status] ?? 'error', message: Array.isArray(message) ? message.join('; ') : String(message), details: null } },
      };
    }
    // Body parser errors (malformed JSON, too large) arrive as plain errors with a status.
    const status = (exception as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const type = (exception as { type?: unknown }).type;
      const message = type === 'entity.too.large' ? 'request body is too large' : (exception as Error).message || 'bad request';
      return { status, body: { error: { code: STATUS_CODES[status] ?? 'bad_request', message, details: null } } };
    }
    if (!(exception instanceof SignInRequired)) this.log.error({ err: exception }, 'unhandled error');
    return { status: HttpStatus.INTERNAL_SERVER_ERROR, body: { error: { code: 'internal', message: 'internal error', details: null } } };
  }
}

type ErrorBody = { error: { code: string; message: string; details: unknown } };

/**
 * Malformed JSON: body-parser's SyntaxError (type 'entity.parse.failed'), which Nest's express
 * adapter rethrows as a BadRequestException carrying only JSON.parse's message. Our own code
 * never throws BadRequestException (it throws ApiError), so that combination is unambiguous.
 */
function isBodyParseError(exception: unknown): boolean {
  if (exception instanceof BadRequestException) return /JSON/.test(exception.message);
  return (exception as { type?: unknown } | null)?.type === 'entity.parse.failed';
}

/**
 * Services throw plain domain errors (they are also called from the CLI and consumers); this is
 * the one place they become HTTP. Validation names the field, as every 400 does.
 */
export function domainErrorResponse(err: DomainError): { status: number; body: { error: { code: string; message: string; details: unknown } } } {
  if (err instanceof ValidationError) {
    return { status: 400, body: { error: { code: 'validation_failed', message: err.message, details: { field: err.field } } } };
  }
  if (err instanceof NotFoundError) {
    return { status: 404, body: { error: { code: 'not_found', message: err.message, details: { entity: err.entity, id: err.key } } } };
  }
  switch (err.code) {
    case 'not_found':
      return { status: 404, body: { error: { code: 'not_found', message: err.message, details: null } } };
    case 'validation':
      return { status: 400, body: { error: { code: 'validation_failed', message: err.message, details: null } } };
    case 'conflict':
      return { status: 409, body: { error: { code: 'conflict', message: err.message, details: null } } };
  }
}
