import type { NestExpressApplication } from '@nestjs/platform-express';
import { startApi } from '../helpers/api-app';

/** Every route the API serves appears in /openapi.json, generated from the code. */
describe('OpenAPI document', () => {
  let app: NestExpressApplication;
  let base: string;

  beforeAll(async () => {
    ({ app, base } = await startApi());
  });
  afterAll(() => app.close());

  it('covers every route the app registers', async () => {
    type Layer = { route?: { path: string; methods: Record<string, boolean> } };
    const router = (app.getHttpAdapter().getInstance() as { _router?: { stack: Layer[] }; router?: { stack: Layer[] } });
    const stack = (router.router ?? router._router)!.stack;
    const served = stack
      // Swagger UI's own assets and the catch-all 404 (`/{*path}`) are not API routes.
      // The dashboard's pages (/app) are HTML for browsers, not API operations.
      .filter((l) => l.route && !l.route.path.startsWith('/docs') && !/^\/app(\/|$)/.test(l.route.path) && l.route.path !== '/openapi.json' && !l.route.path.includes('*'))
      .flatMap((l) =>
        Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
      );
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(served.length).toBeGreaterThan(30);
    expect(served.filter((r) => !documented.includes(r))).toEqual([]);
  });

  it('documents exactly one success answer per operation, with the schema of its body', async () => {
    type Responses = Record<string, { content?: Record<string, { schema?: unknown }> }>;
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Responses }>> };
    const problems: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const successes = Object.entries(operation.responses).filter(([status]) => /^2\d\d$/.test(status));
        const name = `${method.toUpperCase()} ${path}`;
        if (successes.length !== 1) problems.push(`${name}: ${successes.length} success answers`);
        for (const [status, response] of successes) {
          const media = Object.entries(response.content ?? {});
          if (media.length === 0 || media.some(([, m]) => !m.schema)) problems.push(`${name} ${status}: no body schema`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
