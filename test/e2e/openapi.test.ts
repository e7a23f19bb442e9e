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
      .filter((l) => l.route && !l.route.path.startsWith('/docs') && l.route.path !== '/openapi.json' && !l.route.path.includes('*'))
      .flatMap((l) =>
        Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
      );
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(served.length).toBeGreaterThan(30);
    expect(served.filter((r) => !documented.includes(r))).toEqual([]);
  });
});
