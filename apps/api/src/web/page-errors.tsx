import type { Request, Response } from 'express';
import { ErrorPage, renderPage } from './ui';
import { SignInRequired, type WebRequest } from './web-session.guard';

/** Dashboard pages (not their stylesheet). */
export function isPagePath(path: string): boolean {
  return /^\/app(\/|$)/i.test(path) && !/^\/app\/assets\//i.test(path);
}

/**
 * A failed page as a page: no session -> the sign-in form (coming back here afterwards); anything
 * else -> the error page with the status and the same message the JSON API gives. Returns false
 * when the response is already under way (then the caller leaves it alone).
 */
export function answerPage(req: Request, res: Response, exception: unknown, status: number, message: string): boolean {
  if (res.headersSent) return false;
  if (exception instanceof SignInRequired) {
    const next = req.method === 'GET' ? req.originalUrl : '/app';
    res.redirect(303, `/app/sign-in?next=${encodeURIComponent(next)}`);
    return true;
  }
  const web = req as WebRequest;
  const ctx = web.principal && web.webSession ? { principal: web.principal, csrfToken: web.webSession.csrfToken, path: req.path } : null;
  // Internal errors keep their details in the log, as for the API.
  res.status(status).type('html').send(renderPage(<ErrorPage ctx={ctx} status={status} message={status >= 500 ? 'Something went wrong on our side; it has been logged.' : message} />));
  return true;
}
