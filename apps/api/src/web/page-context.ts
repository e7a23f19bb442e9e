import { z, type ZodTypeAny } from 'zod';
import { idFilter, parseInput } from '../common/validation';
import type { PageContext } from './ui';
import type { WebRequest } from './web-session.guard';

export type PageRequest = WebRequest;

/** What every page renders with, from the request the session guard let through. */
export function pageContext(req: PageRequest): PageContext {
  return { principal: req.principal!, csrfToken: req.webSession!.csrfToken, path: req.path };
}

/**
 * A page's query through the API's own validation (the same zod schemas and the same 400s, shown
 * as an error page), so a page and its JSON route accept exactly the same filters.
 */
export function pageQuery<S extends ZodTypeAny>(schema: S, query: unknown): z.output<S> {
  return parseInput(schema, query, 'query');
}

/** An id in the page's path, by the JSON routes' id rule (ValidParam(name, idFilter)): the same 400 for the same bad id. */
export function pathId(name: string, raw: string): string {
  return parseInput(z.object({ [name]: idFilter }), { [name]: raw }, 'path')[name];
}

const accountOnly = z.object({ account_id: idFilter.optional() });

/** account_id: which account an admin or auditor session looks at (account sessions see their own). */
export function accountQuery(query: unknown): z.output<typeof accountOnly> {
  return pageQuery(accountOnly, query);
}
