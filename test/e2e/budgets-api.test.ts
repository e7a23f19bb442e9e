import { useAdminApi } from '../helpers/api-app';
import { aUsageEvent } from '../factories/usage-events';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('budgets API: admin writes, the account’s view, reconciliation', () => {
  const api = useAdminApi();
  const { call } = api;
  const ingest = async (events: unknown[]) => expect((await api.ingest(events)).status).toBeLessThan(300);
  const nowEvent = () => aUsageEvent({ account_id: 'acct_a', occurred_at: new Date().toISOString() });

  beforeEach(async () => {
    expect((await call('POST', '/admin/accounts', { body: { id: 'acct_a', name: 'Acme' } })).status).toBe(201);
  });

  it('creates, reads, changes and deletes a budget, each audited, with the spend of the window so far', async () => {
    await ingest([nowEvent(), nowEvent()]);
    const created = await call('POST', '/admin/budgets', { body: { account_id: 'acct_a', limit_usd: '0.005', window: 'month', enforce: 'hard' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      account_id: 'acct_a', api_key_id: null, model: null, limit_usd: '0.005', window: 'month', thresholds: ['50', '80', '100'],
      enforce: 'hard', spend_usd: '0.00351994', remaining_usd: '0.00148006', state: 'ok',
    });
    const id = created.body.id;

    await ingest([nowEvent()]);
    const account = await call('POST', '/admin/api-keys', { body: { role: 'account', account_id: 'acct_a' } });
    const mine = await call('GET', '/v1/budgets', { key: account.body.key });
    expect(mine.status).toBe(200);
    expect(mine.body.data).toHaveLength(1);
    expect(mine.body.data[0]).toMatchObject({ id, spend_usd: '0.00527991', remaining_usd: '-0.00027991', state: 'blocked' });

    const patched = await call('PATCH', `/admin/budgets/${id}`, { body: { limit_usd: '1', thresholds: ['90', '25.5'] } });
    expect(patched.body).toMatchObject({ limit_usd: '1', thresholds: ['25.5', '90'], state: 'ok' });
    const deleted = await call('DELETE', `/admin/budgets/${id}`);
    expect(deleted).toMatchObject({ status: 200, body: { id, limit_usd: '1' } });
    expect((await call('GET', `/admin/budgets/${id}`)).status).toBe(404);
    const audit = await call('GET', '/admin/audit-log?limit=10');
    expect(audit.body.data.map((e: Json) => e.action).filter((a: string) => a.startsWith('budget.'))).toEqual(['budget.delete', 'budget.update', 'budget.create']);

    const alerts = await api.db.pool.query('SELECT threshold_pct::float8 AS pct, direction FROM budget_alerts ORDER BY id');
    expect(alerts.rows).toEqual([{ pct: 50, direction: 'up' }, { pct: 80, direction: 'up' }, { pct: 100, direction: 'up' }]);
  });

  it('answers bad input with a 4xx and the error shape', async () => {
    const cases: [unknown, string][] = [
      [{ account_id: 'acct_a', limit_usd: 5, window: 'month', enforce: 'hard' }, 'limit_usd'],
      [{ account_id: 'acct_a', limit_usd: '0', window: 'month', enforce: 'hard' }, 'limit_usd'],
      [{ account_id: 'acct_a', limit_usd: '5', window: 'week', enforce: 'hard' }, 'window'],
      [{ account_id: 'acct_a', limit_usd: '5', window: 'day', enforce: 'hard', thresholds: ['120'] }, 'thresholds.0'],
      [{ account_id: 'acct_a', limit_usd: '5', window: 'day', enforce: 'maybe' }, 'enforce'],
    ];
    for (const [body, field] of cases) {
      const res = await call('POST', '/admin/budgets', { body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(JSON.stringify(res.body.error)).toContain(field);
    }
    expect((await call('POST', '/admin/budgets', { body: { account_id: 'acct_nobody', limit_usd: '5', window: 'day', enforce: 'hard' } })).status).toBe(404);
    const wrongKey = await call('POST', '/admin/budgets', { body: { account_id: 'acct_a', api_key_id: 'key_of_nobody', limit_usd: '5', window: 'day', enforce: 'hard' } });
    expect(wrongKey.status).toBe(400);
    expect((await call('PATCH', '/admin/budgets/bud_nope', { body: { limit_usd: '2' } })).status).toBe(404);
    expect((await call('PATCH', '/admin/budgets/bud_nope', { body: { window: 'day' } })).status).toBe(400);
  });

  it('reconciles budget windows against rollups to zero, and finds a window someone changed', async () => {
    const created = await call('POST', '/admin/budgets', { body: { account_id: 'acct_a', limit_usd: '10', window: 'day', enforce: 'soft' } });
    await ingest([nowEvent(), nowEvent(), nowEvent()]);
    const clean = await call('GET', '/admin/reconciliation/budgets');
    expect(clean.body).toEqual({ windows_compared: 1, mismatched_windows: 0, mismatches: [] });

    await api.db.pool.query('UPDATE budget_windows SET spend_usd = spend_usd + 0.0000000001');
    const drifted = await call('GET', '/admin/reconciliation/budgets?account_id=acct_a');
    expect(drifted.body.mismatched_windows).toBe(1);
    expect(drifted.body.mismatches[0]).toMatchObject({ budget_id: created.body.id, difference_usd: '0.0000000001', rollup_spend_usd: '0.00527991' });
  });

  it('lets an admin set what the gateway does for an account when Tokenmeter is unreachable', async () => {
    expect((await call('GET', '/admin/accounts/acct_a')).body.spend_fail_mode).toBe('open');
    expect((await call('PATCH', '/admin/accounts/acct_a', { body: { spend_fail_mode: 'closed' } })).body.spend_fail_mode).toBe('closed');
    expect((await call('PATCH', '/admin/accounts/acct_a', { body: { spend_fail_mode: 'sometimes' } })).status).toBe(400);
  });
});
