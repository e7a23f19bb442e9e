/** The real API (apps/api/src/main.ts) as its own process, for the read-side benchmarks. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { stringArg } from './args';

const ROOT = path.resolve(__dirname, '..');

/**
 * The checkout whose API is measured: this one, or BENCH_API_ROOT (another worktree, with its own
 * node_modules and generated Prisma client) to measure two versions on the very same data set.
 */
export function apiRoot(): string {
  return path.resolve(process.env.BENCH_API_ROOT ?? ROOT);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ApiProcessOptions {
  databaseUrl: string;
  port: number;
  /** Called with each log line (pino JSON on stdout, LOG_LEVEL=info); without it the log goes to /dev/null. */
  onLogLine?: (line: string) => void;
  env?: Record<string, string>;
  /**
   * Run the compiled API (dist/apps/api/src/main.js, `npm run build`) the way the production image
   * does, instead of through ts-node. ts-node keeps the TypeScript compiler in the heap (about
   * 35 MB more after GC here), which every major GC then marks.
   */
  compiled?: boolean;
}

/**
 * `--api compiled|ts-node` (default compiled: dist/, built here first with `npm run build`, a few
 * seconds, as the production image runs it; ts-node: the sources). Returns `compiled` for startApi.
 */
export function apiBuildArg(log: (msg: string) => void): boolean {
  const compiled = stringArg('api', 'compiled', /^(compiled|ts-node)$/) === 'compiled';
  if (compiled) {
    log(`building ${apiRoot()}/dist (npm run build) to run the API compiled`);
    execFileSync('npm', ['run', 'build'], { cwd: apiRoot(), stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return compiled;
}

/** Starts the API and waits for /health/live. BENCH_CPU_PROF=dir: a V8 CPU profile of the API in dir (written at exit). */
export async function startApi(opts: ApiProcessOptions): Promise<ChildProcess> {
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const entry = opts.compiled ? ['-r', 'tsconfig-paths/register', 'dist/apps/api/src/main.js'] : ['-r', 'ts-node/register', 'apps/api/src/main.ts'];
  // TS_NODE_BASEURL: tsconfig-paths maps @tokenmeter/* onto dist/ (as in the Dockerfile).
  const runtime = opts.compiled ? { TS_NODE_BASEURL: './dist' } : { TS_NODE_TRANSPILE_ONLY: 'true' };
  const child = spawn(process.execPath, [...profile, ...entry], {
    cwd: apiRoot(),
    env: { ...process.env, DATABASE_URL: opts.databaseUrl, PORT: String(opts.port), AUTHORIZE_PORT: '0', LOG_LEVEL: 'info', ...runtime, ...opts.env },
    stdio: ['ignore', opts.onLogLine ? 'pipe' : 'ignore', 'inherit'],
  });
  if (opts.onLogLine && child.stdout) createInterface({ input: child.stdout }).on('line', opts.onLogLine);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`API exited with ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${opts.port}/health/live`).then((r) => r.ok, () => false);
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGTERM');
  throw new Error('API did not start within 60 s');
}

export async function stopApi(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
