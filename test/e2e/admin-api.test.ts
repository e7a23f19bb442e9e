import { startApi, useAdminApi } from '../helpers/api-app';
import { hashApiKey, prefixOfApiKey } from '@tokenmeter/auth';
import { aUsageEvent } from '../factories/usage-events';
import { spawnSync } from 'node:child_process';
import { resetDatabase, TEST_DATABASE_URL, totals } from '../helpers/tokenmeter-db';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('admin API: keys, roles, audit trail, price book, overrides, reprice', () => {
  const api = useAdminApi();
  const { call, ingest } = api;

  const adminKeyId = async () => (await api.db.pool.query('SELECT id FROM api_keys WHERE prefix = $1', [prefixOfApiKey(api.adminKey)])).rows[0].id as string;

  beforeEach(async () => {
    expect((await call('POST', '/admin/accounts', { body: { id: 'acct_a', name: 'Acme' } })).status).toBe(201);
    expect((await call('POST', '/admin/accounts', { body: { id: 'acct_b', name: 'Beta' } })).status).toBe(201);
  });

  // Who may call which route is test/e2e/route-authorisation.test.ts (every route, found in the
  // router); this file checks what the admin routes do.
  it('public routes need no key', async () => {
    expect((await call('GET', '/health/live', { key: null })).status).toBe(200);
    expect((await fetch(`${api.base}/openapi.json`)).status).toBe(200);
  });

  describe('API keys', () => {
    it('shows the key once, stores only its sha256, never lists secrets, and revocation is immediate', async () => {
      const created = await call('POST', '/admin/api-keys', { body: { role: 'account', account_id: 'acct_a', name: 'dashboard' } });
      expect(created.status).toBe(201);
      const { key, id, prefix } = created.body;
      expect(key).toMatch(/^tm_live_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/);
      expect(created.body).toMatchObject({ role: 'account', account_id: 'acct_a', prefix: key.slice(0, 16), name: 'dashboard' });

      const row = (await api.db.pool.query('SELECT * FROM api_keys WHERE id = $1', [id])).rows[0];
      expect(row.secret_hash).toBe(hashApiKey(key));
      expect(JSON.stringify(row)).not.toContain(key.slice(17));

      const list = await call('GET', '/admin/api-keys');
      const text = JSON.stringify(list.body);
      expect(text).toContain(prefix);
      expect(text).not.toContain(key.slice(17));
      expect(text).not.toContain(row.secret_hash);
      expect(list.body.data.find((k: Json) => k.id === id)).not.toHaveProperty('key');

      // The key authenticates (403 on an admin route, not 401) and records its use.
      expect((await call('GET', '/admin/accounts', { key })).status).toBe(403);
      await new Promise((r) => setTimeout(r, 100));
      expect((await api.db.pool.query('SELECT last_used_at FROM api_keys WHERE id = $1', [id])).rows[0].last_used_at).not.toBeNull();

      expect((await call('DELETE', `/admin/api-keys/${id}`)).body.revoked_at).not.toBeNull();
      const after = await call('GET', '/admin/accounts', { key });
      expect(after).toEqual({ status: 401, headers: expect.any(Headers), body: { error: { code: 'unauthorized', message: 'API key has been revoked', details: null } } });
    });

    it('an account key needs an existing account; an admin key takes none', async () => {
      expect((await call('POST', '/admin/api-keys', { body: { role: 'account' } })).body.error).toMatchObject({ code: 'validation_failed', details: { field: 'account_id' } });
      expect((await call('POST', '/admin/api-keys', { body: { role: 'account', account_id: 'acct_nope' } })).status).toBe(404);
      expect((await call('POST', '/admin/api-keys', { body: { role: 'admin', account_id: 'acct_a' } })).status).toBe(400);
      expect((await call('POST', '/admin/api-keys', { body: { role: 'root' } })).body.error).toMatchObject({ code: 'validation_failed', details: { field: 'role' } });
      expect((await call('DELETE', '/admin/api-keys/key_missing')).status).toBe(404);
    });

    it('an auditor key takes no account, reads what an admin reads and writes nothing (API and CLI)', async () => {
      expect((await call('POST', '/admin/api-keys', { body: { role: 'auditor', account_id: 'acct_a' } })).body.error).toMatchObject({
        code: 'validation_failed',
        details: { field: 'account_id' },
      });
      const created = await call('POST', '/admin/api-keys', { body: { role: 'auditor', name: 'quarterly audit' } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ role: 'auditor', account_id: null, name: 'quarterly audit' });
      const { key } = created.body;
      expect((await call('GET', '/admin/audit-log?action=api_key.create', { key })).body.data[0]).toMatchObject({ target_id: created.body.id });
      expect((await call('GET', '/v1/usage/summary?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z', { key })).body.error).toMatchObject({ details: { field: 'account_id' } });
      const write = await call('POST', '/admin/accounts', { key, body: { id: 'acct_by_auditor' } });
      expect(write).toEqual({ status: 403, headers: expect.any(Headers), body: { error: { code: 'forbidden', message: 'auditor keys are read-only; this route needs an admin key', details: null } } });

      const run = spawnSync(process.execPath, ['-r', 'ts-node/register', 'apps/cli/src/main.ts', 'keys', 'create', '--role', 'auditor', '--name', 'cli-auditor'], {
        cwd: `${__dirname}/../..`,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
        encoding: 'utf8',
      });
      expect(run.status).toBe(0);
      const cliKey = run.stdout.trim();
      expect((await call('GET', '/admin/models', { key: cliKey })).status).toBe(200);
      expect((await call('DELETE', `/admin/api-keys/${created.body.id}`, { key: cliKey })).status).toBe(403);
      const bad = spawnSync(process.execPath, ['-r', 'ts-node/register', 'apps/cli/src/main.ts', 'keys', 'create', '--role', 'root'], {
        cwd: `${__dirname}/../..`,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
        encoding: 'utf8',
      });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/--role must be one of admin, auditor, account/);
    }, 60_000);

    it('TOKENMETER_ADMIN_KEY: an admin key with that secret exists after start-up, once, whatever its shape', async () => {
      await resetDatabase(api.db);
      const foreign = 'a-hand-made-admin-secret-for-bootstrap-0001';
      process.env.TOKENMETER_ADMIN_KEY = foreign;
      try {
        for (let boot = 0; boot < 2; boot++) {
          const other = await startApi();
          try {
            const res = await fetch(`${other.base}/admin/accounts`, { headers: { authorization: `Bearer ${foreign}` } });
            expect(res.status).toBe(200);
          } finally {
            await other.app.close();
          }
        }
      } finally {
        process.env.TOKENMETER_ADMIN_KEY = api.adminKey;
      }
      const { rows } = await api.db.pool.query('SELECT role, secret_hash, name FROM api_keys');
      expect(rows).toEqual([{ role: 'admin', secret_hash: hashApiKey(foreign), name: 'TOKENMETER_ADMIN_KEY' }]);
      const audit = await api.db.pool.query('SELECT action, actor_key_id FROM audit_log');
      expect(audit.rows).toEqual([{ action: 'api_key.bootstrap', actor_key_id: null }]);
    });

    it('CLI: keys create prints the key once and stores only its hash', async () => {
      const run = spawnSync(process.execPath, ['-r', 'ts-node/register', 'apps/cli/src/main.ts', 'keys', 'create', '--role', 'account', '--account', 'acct_b', '--name', 'from-cli'], {
        cwd: `${__dirname}/../..`,
        env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
        encoding: 'utf8',
      });
      expect(run.status).toBe(0);
      const key = run.stdout.trim();
      expect(key).toMatch(/^tm_live_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}$/);
      expect(run.stderr).toMatch(/not shown again/);
      const { rows } = await api.db.pool.query("SELECT role, account_id, secret_hash FROM api_keys WHERE name = 'from-cli'");
      expect(rows).toEqual([{ role: 'account', account_id: 'acct_b', secret_hash: hashApiKey(key) }]);
      expect((await call('GET', '/admin/models', { key })).status).toBe(403);
      const audit = await call('GET', '/admin/audit-log?action=api_key.create');
      expect(audit.body.data[0]).toMatchObject({ actor_key_id: null, after: { name: 'from-cli', account_id: 'acct_b' } });
    }, 60_000);
  });

  describe('audit trail', () => {
    it('records every admin write with actor, target, before/after and request id, newest first', async () => {
      const res = await call('PATCH', '/admin/accounts/acct_a', { body: { name: 'Acme Corp', email: 'billing@acme.test' }, headers: { 'x-request-id': 'req-audit-1' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: 'acct_a', name: 'Acme Corp', email: 'billing@acme.test' });

      const page = await call('GET', '/admin/audit-log?limit=2');
      expect(page.body.data).toHaveLength(2);
      expect(page.body.data[0]).toMatchObject({
        actor_key_id: await adminKeyId(),
        action: 'account.update',
        target_type: 'account',
        target_id: 'acct_a',
        before: { name: 'Acme', email: null },
        after: { name: 'Acme Corp', email: 'billing@acme.test' },
        request_id: 'req-audit-1',
      });
      expect(page.body.data[1]).toMatchObject({ action: 'account.create', target_id: 'acct_b', before: null, after: { name: 'Beta' } });
      const next = await call('GET', `/admin/audit-log?limit=2&cursor=${page.body.next_cursor}`);
      expect(next.body.data.map((e: Json) => e.target_id)).toEqual(['acct_a', expect.any(String)]);
      expect((await call('GET', '/admin/audit-log?target_id=acct_b')).body.data.map((e: Json) => e.action)).toEqual(['account.create']);
      expect((await call('GET', '/admin/audit-log?cursor=zzz')).body.error.details.field).toBe('cursor');
    });

    it('the database refuses UPDATE and DELETE on audit_log', async () => {
      await expect(api.db.pool.query("UPDATE audit_log SET action = 'forged'")).rejects.toThrow(/append-only/);
      await expect(api.db.pool.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
      expect((await api.db.pool.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBe(3); // bootstrap key + 2 accounts
    });

    it('a write that fails leaves no audit entry (same transaction)', async () => {
      expect((await call('POST', '/admin/accounts', { body: { id: 'acct_a', name: 'Again' } })).status).toBe(409);
      expect((await api.db.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE target_id = 'acct_a'")).rows[0].n).toBe(1);
    });
  });

  describe('validation: always 4xx in the one shape, naming the field', () => {
    it.each<[string, string, unknown, number, string]>([
      ['POST', '/admin/accounts', { id: 'acct x', name: 'n' }, 400, 'id'],
      ['POST', '/admin/accounts', { id: 'acct_c' }, 400, 'name'],
      ['POST', '/admin/accounts', { id: 'acct_c', name: 'n', email: 'not-an-email' }, 400, 'email'],
      ['POST', '/admin/accounts', { id: 'acct_c', name: 'n', plan: 'gold' }, 400, 'body'],
      ['POST', '/admin/accounts', [1, 2], 400, 'body'],
      ['PATCH', '/admin/accounts/acct_a', {}, 400, 'body'],
      ['GET', '/admin/accounts?limit=0', undefined, 400, 'limit'],
      ['POST', '/admin/models', { id: 'm1', context_window: -1 }, 400, 'context_window'],
      ['POST', '/admin/models/gpt-4o/prices', { effective_from: '2027-01-01T00:00:00Z', input_per_mtok: 2.5, output_per_mtok: '8', cache_read_per_mtok: '1' }, 400, 'input_per_mtok'],
      ['POST', '/admin/models/gpt-4o/prices', { effective_from: '2027-01-01T00:00:00Z', input_per_mtok: '-1', output_per_mtok: '8', cache_read_per_mtok: '1' }, 400, 'input_per_mtok'],
      ['POST', '/admin/models/gpt-4o/prices', { effective_from: '2027-01-01T00:00:00Z', input_per_mtok: '1', output_per_mtok: '0.00000000001', cache_read_per_mtok: '1' }, 400, 'output_per_mtok'],
      ['POST', '/admin/models/gpt-4o/prices', { effective_from: '2027-01-01', input_per_mtok: '1', output_per_mtok: '1', cache_read_per_mtok: '1' }, 400, 'effective_from'],
      ['POST', '/admin/models/no-such-model/prices', { effective_from: '2027-01-01T00:00:00Z', input_per_mtok: '1', output_per_mtok: '1', cache_read_per_mtok: '1' }, 404, ''],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'rate_card', input_per_mtok: '1', output_per_mtok: '1', cache_read_per_mtok: '1', effective_from: '2026-01-01T00:00:00Z' }, 400, 'model_id'],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'discount', discount_percent: '0', effective_from: '2026-01-01T00:00:00Z' }, 400, 'discount_percent'],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'discount', discount_percent: '10', input_per_mtok: '1', effective_from: '2026-01-01T00:00:00Z' }, 400, 'body'],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'discount', discount_percent: '10', effective_from: '2026-02-01T00:00:00Z', effective_to: '2026-01-01T00:00:00Z' }, 400, 'effective_to'],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'discount', model_id: 'no-such-model', discount_percent: '10', effective_from: '2026-01-01T00:00:00Z' }, 400, 'model_id'],
      ['POST', '/admin/accounts/acct_a/price-overrides', { kind: 'surcharge', effective_from: '2026-01-01T00:00:00Z' }, 400, 'kind'],
      ['POST', '/admin/accounts/acct_nope/price-overrides', { kind: 'discount', discount_percent: '10', effective_from: '2026-01-01T00:00:00Z' }, 404, ''],
      ['GET', '/admin/accounts/acct_nope/price-overrides', undefined, 404, ''],
      ['GET', '/admin/accounts/acct_nope', undefined, 404, ''],
      ['POST', '/admin/reprice', { from: '2026-12-01T00:00:00Z', to: '2026-11-01T00:00:00Z' }, 400, 'to'],
      ['POST', '/admin/reprice', { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z', dry_run: 'no' }, 400, 'dry_run'],
    ])('%s %s %j -> %i (%s)', async (method, path, body, status, field) => {
      const res = await call(method, path, { body });
      expect(res.status).toBe(status);
      expect(Object.keys(res.body.error).sort()).toEqual(['code', 'details', 'message']);
      if (field) expect(res.body.error.details.field).toBe(field);
    });

    it('price versions are immutable: the same (model, effective_from) again is a 409', async () => {
      const body = { effective_from: '2027-01-01T00:00:00Z', input_per_mtok: '2.0000000001', output_per_mtok: '8', cache_read_per_mtok: '1' };
      const first = await call('POST', '/admin/models/gpt-4o/prices', { body });
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ model_id: 'gpt-4o', input_per_mtok: '2.0000000001', cache_write_per_mtok: null });
      const again = await call('POST', '/admin/models/gpt-4o/prices', { body: { ...body, input_per_mtok: '3' } });
      expect(again.status).toBe(409);
      expect(again.body.error.message).toMatch(/immutable/);
      const models = await call('GET', '/admin/models');
      expect(models.body.data.find((m: Json) => m.id === 'gpt-4o').prices.map((p: Json) => p.input_per_mtok)).toEqual(['2.5', '2.0000000001']);
      expect((await call('POST', '/admin/models', { body: { id: 'gpt-4o' } })).status).toBe(409);
    });
  });

  describe('price overrides and reprice', () => {
    const usage = { input_tokens: 1_000_000, output_tokens: 1_000_000, cache_read_tokens: 0 };
    const range = { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' };
    const costOf = async (accountId: string) =>
      (await api.db.pool.query('SELECT trim_scale(cost_usd)::text AS c, price_override_id::text AS o FROM usage_events WHERE account_id = $1 ORDER BY event_id', [accountId])).rows;

    it('ingest prices with a rate card or a discount in force, records both ids, and rollups equal raw events', async () => {
      expect(
        (await call('POST', '/admin/accounts/acct_a/price-overrides', {
          body: { kind: 'rate_card', model_id: 'gpt-4o', input_per_mtok: '2', output_per_mtok: '8', cache_read_per_mtok: '1', effective_from: '2026-11-10T00:00:00Z' },
        })).status,
      ).toBe(201);
      const discount = await call('POST', '/admin/accounts/acct_a/price-overrides', {
        body: { kind: 'discount', discount_percent: 12.5, effective_from: '2026-11-01T00:00:00Z', effective_to: '2026-12-01T00:00:00Z' },
      });
      expect(discount.body).toMatchObject({ kind: 'discount', model_id: null, discount_percent: '12.5', effective_to: '2026-12-01T00:00:00.000Z' });
      const listed = await call('GET', '/admin/accounts/acct_a/price-overrides');
      expect(listed.body.data.map((o: Json) => o.kind)).toEqual(['discount', 'rate_card']);

      const res = await ingest([
        aUsageEvent({ event_id: 'e1', account_id: 'acct_a', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }), // rate card: 2 + 8
        aUsageEvent({ event_id: 'e2', account_id: 'acct_a', model: 'gpt-4o', occurred_at: '2026-11-05T00:00:00Z', usage }), // before the card: list 12.5 x 0.875
        aUsageEvent({ event_id: 'e3', account_id: 'acct_a', model: 'gpt-4o-mini', occurred_at: '2026-11-15T00:00:00Z', usage }), // discount: 0.75 x 0.875
        aUsageEvent({ event_id: 'e4', account_id: 'acct_b', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }), // list
      ]);
      expect(res.body.summary.accepted).toBe(4);
      const { rows } = await api.db.pool.query(
        `SELECT event_id, trim_scale(cost_usd)::text AS cost, price_override_id::text AS override, v.input_per_mtok::numeric::text AS list_input
         FROM usage_events e JOIN price_versions v ON v.id = e.price_version_id ORDER BY event_id`,
      );
      const cardId = listed.body.data[1].id;
      expect(rows).toEqual([
        { event_id: 'e1', cost: '10', override: cardId, list_input: '2.5000000000' },
        { event_id: 'e2', cost: '10.9375', override: discount.body.id, list_input: '2.5000000000' },
        { event_id: 'e3', cost: '0.65625', override: discount.body.id, list_input: '0.1500000000' },
        { event_id: 'e4', cost: '12.5', override: null, list_input: '2.5000000000' },
      ]);
      const t = await totals(api.db);
      expect(t.rollup).toEqual(t.raw);
    });

    it('reprice: dry run changes nothing, apply updates events, rollups and the audit log in one go', async () => {
      await ingest([
        aUsageEvent({ event_id: 'a1', account_id: 'acct_a', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }),
        aUsageEvent({ event_id: 'a2', account_id: 'acct_a', model: 'brand-new', occurred_at: '2026-11-15T01:00:00Z', usage }),
        aUsageEvent({ event_id: 'b1', account_id: 'acct_b', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }),
      ]);
      // After the fact: a 50% discount for acct_a, and a price for the model that had none.
      await call('POST', '/admin/accounts/acct_a/price-overrides', { body: { kind: 'discount', discount_percent: '50', effective_from: '2026-11-01T00:00:00Z' } });
      expect((await call('POST', '/admin/models', { body: { id: 'brand-new' } })).status).toBe(201);
      await call('POST', '/admin/models/brand-new/prices', { body: { effective_from: '2026-01-01T00:00:00Z', input_per_mtok: '1', output_per_mtok: '3', cache_read_per_mtok: '0' } });
      const before = await totals(api.db);
      expect(before.raw).toMatchObject({ cost_usd: '25', unpriced: '1' });

      const dry = await call('POST', '/admin/reprice', { body: { ...range } }); // dry_run defaults to true
      expect(dry.status).toBe(200);
      expect(dry.body).toMatchObject({ dry_run: true, account_id: null });
      expect(dry.body.by_account_model).toEqual([
        { account_id: 'acct_a', model: 'brand-new', events: 1, events_changed: 1, cost_before_usd: '0', cost_after_usd: '2' },
        { account_id: 'acct_a', model: 'gpt-4o', events: 1, events_changed: 1, cost_before_usd: '12.5', cost_after_usd: '6.25' },
        { account_id: 'acct_b', model: 'gpt-4o', events: 1, events_changed: 0, cost_before_usd: '12.5', cost_after_usd: '12.5' },
      ]);
      expect(dry.body.totals).toEqual({ events: 3, events_changed: 2, cost_before_usd: '25', cost_after_usd: '20.75' });
      expect(await totals(api.db)).toEqual(before);
      expect((await call('GET', '/admin/audit-log?action=usage.reprice')).body.data).toEqual([]);

      const applied = await call('POST', '/admin/reprice', { body: { ...range, dry_run: false } });
      expect(applied.body.totals).toEqual(dry.body.totals);
      const after = await totals(api.db);
      expect(after.raw).toMatchObject({ cost_usd: '20.75', unpriced: '0' });
      expect(after.rollup).toEqual(after.raw);
      expect((await costOf('acct_a')).map((r) => r.o !== null)).toEqual([true, true]); // the discount covers all models
      const audit = (await call('GET', '/admin/audit-log?action=usage.reprice')).body.data;
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ before: { cost_usd: '25' }, after: { cost_usd: '20.75', events_changed: 2 } });

      // Idempotent: nothing left to change.
      const again = await call('POST', '/admin/reprice', { body: { ...range, dry_run: false } });
      expect(again.body.totals).toMatchObject({ events_changed: 0, cost_before_usd: '20.75', cost_after_usd: '20.75' });
    });

    it('reprice refuses a range holding invoiced usage, for that account only', async () => {
      await ingest([
        aUsageEvent({ event_id: 'a1', account_id: 'acct_a', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }),
        aUsageEvent({ event_id: 'b1', account_id: 'acct_b', model: 'gpt-4o', occurred_at: '2026-11-15T00:00:00Z', usage }),
      ]);
      await api.db.pool.query("UPDATE usage_events SET invoice_id = 'inv_test' WHERE event_id = 'a1'");
      await call('POST', '/admin/accounts/acct_a/price-overrides', { body: { kind: 'discount', discount_percent: '50', effective_from: '2026-11-01T00:00:00Z' } });
      for (const dryRun of [true, false]) {
        const refused = await call('POST', '/admin/reprice', { body: { ...range, dry_run: dryRun } });
        expect(refused.status).toBe(409);
        expect(refused.body.error.message).toMatch(/already invoiced.*corrected on the next invoice/);
      }
      expect((await costOf('acct_a'))[0].c).toBe('12.5');
      const other = await call('POST', '/admin/reprice', { body: { ...range, account_id: 'acct_b', dry_run: false } });
      expect(other.status).toBe(200);
      expect(other.body.totals.events).toBe(1);
    });
  });
});
