import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_DATABASE_URL, useTestDatabase } from '../helpers/tokenmeter-db';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
// Entries cut verbatim from LiteLLM 1.110.2's price map, and a list in OpenRouter's shape (libs/billing/src/__fixtures__).
const LITELLM = join(ROOT, 'libs/billing/src/__fixtures__/litellm-model-prices.json');
const OPENROUTER = join(ROOT, 'libs/billing/src/__fixtures__/openrouter-models.json');
const DEC = '2026-12-01T00:00:00Z';

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, ['-r', 'ts-node/register', 'apps/cli/src/main.ts', 'prices', 'import', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * `npm run cli -- prices import` against the real database: the dry run prints the diff and
 * writes nothing; the apply adds exactly those versions (exact NUMERIC values), creates and
 * updates models, and audits each write like the admin API; bad input writes nothing either.
 */
describe('CLI: prices import', () => {
  const db = useTestDatabase();
  let dir: string;

  const bookState = async () => ({
    versions: (await db.pool.query('SELECT model_id, effective_from, input_per_mtok::text, output_per_mtok::text, cache_read_per_mtok::text, cache_write_per_mtok::text FROM price_versions ORDER BY id')).rows,
    models: (await db.pool.query('SELECT id, provider, context_window, max_output_tokens FROM models ORDER BY id')).rows,
    audit: (await db.pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n,
  });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-price-import-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a dry run prints model, field, current -> proposed and writes nothing; the apply writes exactly that, audited; again, nothing to change', async () => {
    const before = await bookState();
    const args = [LITELLM, '--format', 'litellm', '--effective-at', DEC, '--model', 'deepseek-r1=deepseek-reasoner', '--model', 'qwen-turbo=dashscope/qwen-turbo'];
    const dry = cli(...args, '--dry-run');
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('litellm price map: 11 models in the file; new versions effective from 2026-12-01T00:00:00.000Z.');
    expect(dry.stdout).toContain(
      [
        'deepseek-r1 (from deepseek-reasoner): new price version',
        '  input_per_mtok       0.5714 -> 0.28',
        '  output_per_mtok      2.2857 -> 0.42',
        '  cache_read_per_mtok  0.2286 -> 0.028',
      ].join('\n'),
    );
    expect(dry.stdout).toContain('gpt-4o: unchanged\n');
    expect(dry.stdout).toContain('claude-sonnet-4: skipped: the file has no model claude-sonnet-4 (map the model to its key in the file)\n');
    expect(dry.stdout).toContain('qwen-turbo (from dashscope/qwen-turbo): new model, with its first price version\n');
    expect(dry.stdout).toContain('7 models: 1 new, 1 changed, 2 unchanged, 3 skipped; 2 new price versions.\nDry run: nothing was written.');
    expect(await bookState()).toEqual(before);

    const applied = cli(...args);
    expect(applied.status).toBe(0);
    expect(applied.stdout).toMatch(/Applied in one transaction .* Price versions added: deepseek-r1 \d+, qwen-turbo \d+\.\n$/);
    const after = await bookState();
    expect(after.versions.slice(before.versions.length)).toEqual([
      { model_id: 'deepseek-r1', effective_from: new Date(DEC), input_per_mtok: '0.2800000000', output_per_mtok: '0.4200000000', cache_read_per_mtok: '0.0280000000', cache_write_per_mtok: null },
      { model_id: 'qwen-turbo', effective_from: new Date(DEC), input_per_mtok: '0.0500000000', output_per_mtok: '0.2000000000', cache_read_per_mtok: '0.0500000000', cache_write_per_mtok: null },
    ]);
    expect(after.models).toContainEqual({ id: 'qwen-turbo', provider: 'dashscope', context_window: 129024, max_output_tokens: 16384 });
    const audit = await db.pool.query("SELECT action, target_id, actor_key_id, request_id, after FROM audit_log ORDER BY id");
    expect(audit.rows.map((r) => [r.action, r.actor_key_id])).toEqual([
      ['price_version.create', null],
      ['model.create', null],
      ['price_version.create', null],
    ]);
    expect(audit.rows[0].request_id).toMatch(/^cli:\d+$/);
    expect(audit.rows[0].after).toMatchObject({ model_id: 'deepseek-r1', effective_from: '2026-12-01T00:00:00.000Z', input_per_mtok: '0.28', cache_write_per_mtok: null });
    expect(audit.rows[1].after).toMatchObject({ id: 'qwen-turbo', provider: 'dashscope', context_window: 129024, prices: [] });

    const again = cli(...args);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('7 models: 0 new, 0 changed, 4 unchanged, 3 skipped; 0 new price versions.\nNothing to change: the book already has these prices.');
    expect(await bookState()).toEqual(after);
  });

  it('OpenRouter with a mapping file: the context window comes along (audited as model.update); a null mapping leaves a model out', async () => {
    const mapping = join(dir, 'mapping.json');
    writeFileSync(mapping, JSON.stringify({ 'deepseek-r1': 'deepseek/deepseek-r1', 'claude-sonnet-4': 'anthropic/claude-sonnet-4', 'gpt-4o': null }));
    const run = cli(OPENROUTER, '--format', 'openrouter', '--mapping', mapping, '--effective-at', DEC);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('deepseek-r1 (from deepseek/deepseek-r1): limits only (prices unchanged)\n  context_window       131072 -> 163840\n');
    expect(run.stdout).toContain('claude-sonnet-4 (from anthropic/claude-sonnet-4): limits only (prices unchanged)\n  context_window       200000 -> 1000000\n');
    expect(run.stdout).toContain('gpt-4o: skipped: left out by the mapping\n');
    const { rows } = await db.pool.query("SELECT id, context_window FROM models WHERE id IN ('deepseek-r1', 'claude-sonnet-4', 'gpt-4o') ORDER BY id");
    expect(rows).toEqual([
      { id: 'claude-sonnet-4', context_window: 1000000 },
      { id: 'deepseek-r1', context_window: 163840 },
      { id: 'gpt-4o', context_window: 128000 },
    ]);
    const audit = await db.pool.query("SELECT target_id, before->'context_window' AS was, after->'context_window' AS now FROM audit_log WHERE action = 'model.update' ORDER BY id");
    expect(audit.rows).toEqual([
      { target_id: 'claude-sonnet-4', was: 200000, now: 1000000 },
      { target_id: 'deepseek-r1', was: 131072, now: 163840 },
    ]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM price_versions')).rows[0].n).toBe(6);
  });

  it('refuses, writing nothing: an effective instant not after the latest version, a key the file lacks, an unknown format', async () => {
    const before = await bookState();
    const early = cli(LITELLM, '--format', 'litellm', '--model', 'deepseek-r1=deepseek-reasoner', '--effective-at', '2025-01-01T00:00:00Z');
    expect(early.status).toBe(1);
    expect(early.stderr).toBe(
      'error: effective_at: must be after the latest price version of every model it changes (versions are immutable; an import only adds versions after them): deepseek-r1 (2025-01-01T00:00:00.000Z)\n',
    );
    const missing = cli(LITELLM, '--format', 'litellm', '--model', 'deepseek-r1=deepseek-r2');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('error: models: the file has no model deepseek-r1=deepseek-r2');
    const format = cli(LITELLM, '--format', 'helicone', '--dry-run');
    expect(format.status).toBe(2);
    expect(format.stderr).toMatch(/^error: --format must be one of litellm, openrouter\n\nUsage:/);
    expect(await bookState()).toEqual(before);
  });
});
