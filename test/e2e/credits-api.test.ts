import { CreditState, SpendAuthorizer } from '@tokenmeter/limits';
import { INGEST_TOKEN, useAdminApi } from '../helpers/api-app';
import { aUsageEvent } from '../factories/usage-events';
import { until } from '../helpers/kafka';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('credits API: grants, the account’s balances and ledger, and authorize for prepaid-only accounts', () => {
  const api = useAdminApi();
  const { call } = api;
  const ingest = async (events: unknown[]) => expect((await api.ingest(events)).status).toBeLessThan(300);
  const authorize = (body: Record<string, unknown>) =>
    call('POST', '/v1/spend/authorize', { key: INGEST_TOKEN, body: { account_id: 'acct_a', model: 'deepseek-r1', ...body } });
  const newGrant = (over: Record<string, unknown> = {}) => ({
    amount_usd: '10',
    category: 'promotional',
    effective_at: '2026-01-01T00:00:00Z',
    idempotency_key: 'promo-1',
    ...over,
  });

  beforeEach(async () => {
    expect((await call('POST', '/admin/accounts', { body: { id: 'acct_a', name: 'Acme' } })).status).toBe(201);
  });

  it('grants (201, the same grant again for the same key and terms, 409 for other terms), lists, voids, and shows the account its balances and entries', async () => {
    const created = await call('POST', '/admin/accounts/acct_a/credit-grants', { body: newGrant({ expires_at: '2027-01-01T00:00:00Z', models: ['deepseek-r1'] }) });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      account_id: 'acct_a', amount_usd: '10', category: 'promotional', priority: 0, effective_at: '2026-01-01T00:00:00.000Z',
      expires_at: '2027-01-01T00:00:00.000Z', models: ['deepseek-r1'], status: 'active', state: 'usable',
      ledger_balance_usd: '10', pending_usd: '0', available_usd: '10',
    });
    const replay = await call('POST', '/admin/accounts/acct_a/credit-grants', {
      body: newGrant({ amount_usd: '10.00', expires_at: '2027-01-01T01:00:00+01:00', models: ['deepseek-r1'] }),
    });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(created.headers.get('idempotent-replayed')).toBeNull();
    expect(replay.body).toEqual(created.body);
    const other = await call('POST', '/admin/accounts/acct_a/credit-grants', { body: newGrant({ amount_usd: '11' }) });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('conflict');
    const paid = await call('POST', '/admin/accounts/acct_a/credit-grants', { body: newGrant({ category: 'paid', amount_usd: '5', idempotency_key: 'paid-1' }) });
    expect(paid.status).toBe(201);

    // Three events now: 3 x 0.00175997 drawn from the promotional grant (soonest expiry).
    const now = new Date().toISOString();
    await ingest([0, 1, 2].map(() => aUsageEvent({ account_id: 'acct_a', occurred_at: now })));
    const account = await call('POST', '/admin/api-keys', { body: { role: 'account', account_id: 'acct_a' } });
    const mine = await call('GET', '/v1/credits', { key: account.body.key });
    expect(mine.status).toBe(200);
    expect(mine.body.grants.map((g: Json) => [g.id, g.pending_usd, g.available_usd])).toEqual([
      [created.body.id, '0.00527991', '9.99472009'],
      [paid.body.id, '0', '5'],
    ]);
    expect(mine.body.totals).toEqual({ ledger_balance_usd: '15', pending_usd: '0.00527991', available_usd: '14.99472009', usable_usd: '14.99472009' });
    expect((await call('GET', '/admin/accounts/acct_a/credit-grants')).body).toMatchObject({ totals: mine.body.totals });

    const voided = await call('POST', `/admin/credit-grants/${paid.body.id}/void`);
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ status: 'voided', state: 'voided', ledger_balance_usd: '0', available_usd: '0' });
    expect((await call('POST', `/admin/credit-grants/${paid.body.id}/void`)).status).toBe(409);
    expect((await call('GET', `/admin/credit-grants/${paid.body.id}`)).body.voided_at).not.toBeNull();

    const page1 = await call('GET', '/v1/credits/entries?limit=2', { key: account.body.key });
    expect(page1.body.data.map((e: Json) => [e.kind, e.amount_usd])).toEqual([['void', '-5'], ['grant', '5']]);
    const page2 = await call('GET', `/v1/credits/entries?limit=2&cursor=${page1.body.next_cursor}`, { key: account.body.key });
    expect(page2.body).toEqual({ data: [expect.objectContaining({ kind: 'grant', amount_usd: '10', grant_id: created.body.id })], next_cursor: null });
    expect((await call('GET', '/v1/credits/entries?account_id=acct_a')).body.data).toHaveLength(3);

    const audit = await call('GET', '/admin/audit-log?limit=10');
    expect(audit.body.data.map((e: Json) => e.action).filter((a: string) => a.startsWith('credit_grant.'))).toEqual([
      'credit_grant.void', 'credit_grant.create', 'credit_grant.create',
    ]);
    // An account key sees only its own account; an admin must name one.
    expect((await call('GET', '/v1/credits?account_id=acct_other', { key: account.body.key })).status).toBe(404);
    expect((await call('GET', '/v1/credits')).status).toBe(400);
    expect((await call('POST', '/admin/accounts/acct_a/credit-grants', { key: account.body.key, body: newGrant() })).status).toBe(403);
  });

  it('answers bad input with a 4xx and the error shape', async () => {
    const cases: [unknown, string][] = [
      [newGrant({ amount_usd: 5 }), 'amount_usd'],
      [newGrant({ amount_usd: '0' }), 'amount_usd'],
      [newGrant({ amount_usd: '1.00000000000000000000001' }), 'amount_usd'],
      [newGrant({ category: 'free' }), 'category'],
      [newGrant({ effective_at: 'yesterday' }), 'effective_at'],
      [newGrant({ expires_at: '2025-01-01T00:00:00Z' }), 'expires_at'],
      [newGrant({ priority: 1.5 }), 'priority'],
      [newGrant({ models: 'gpt-4o' }), 'models'],
      [newGrant({ idempotency_key: '' }), 'idempotency_key'],
      [newGrant({ surprise: true }), 'surprise'],
    ];
    for (const [body, field] of cases) {
      const res = await call('POST', '/admin/accounts/acct_a/credit-grants', { body });
      expect([res.status, field]).toEqual([400, field]);
      expect(res.body.error.code).toBe('validation_failed');
      expect(JSON.stringify(res.body.error)).toContain(field);
    }
    expect((await call('POST', '/admin/accounts/acct_nobody/credit-grants', { body: newGrant() })).status).toBe(404);
    expect((await call('POST', '/admin/credit-grants/cg_nope/void')).status).toBe(404);
    expect((await call('GET', '/admin/credit-grants/cg_nope')).status).toBe(404);
    expect((await call('GET', '/v1/credits/entries?account_id=acct_a&cursor=nope!')).status).toBe(400);
    expect((await call('PATCH', '/admin/accounts/acct_a', { body: { prepaid_only: 'yes' } })).status).toBe(400);
  });

  it('denies a prepaid-only account’s request exactly when its credits cannot cover it, holds included', async () => {
    // What authorize holds for 1200 input and 500 output tokens of deepseek-r1: 0.00182853. Two of them, exactly.
    expect((await call('POST', '/admin/accounts/acct_a/credit-grants', { body: newGrant({ amount_usd: '0.00365706' }) })).status).toBe(201);
    const patched = await call('PATCH', '/admin/accounts/acct_a', { body: { prepaid_only: true } });
    expect(patched.body.prepaid_only).toBe(true);
    const credits = api.app.get(CreditState);
    const authorizer = api.app.get(SpendAuthorizer);
    await until('the credit state knows acct_a is prepaid-only', () => credits.isPrepaidOnly('acct_a') && credits.pools('acct_a').length === 1);
    // beforeEach re-seeds the price book; the authorizer re-reads it every 5 s: read it now instead of waiting.
    await (authorizer as unknown as { refreshPricing(): Promise<void> }).refreshPricing();

    const req = (id: string, over: Record<string, unknown> = {}) =>
      authorize({ request_id: id, estimated_input_tokens: 1200, max_output_tokens: 500, ...over });
    expect(await req('r1')).toMatchObject({ status: 200, body: { decision: 'allow', hold_usd: '0.00182853', remaining_usd: '0.00182853' } });
    expect(await req('r2')).toMatchObject({ status: 200, body: { decision: 'allow', remaining_usd: '0' } }); // exactly all of it
    const r3 = await req('r3');
    expect(r3).toMatchObject({ status: 429, body: { decision: 'deny', reason: 'holds_in_flight' } });
    expect(r3.body.limit_source).toEqual({ type: 'credits', available_usd: '0.00365706', held_usd: '0.00365706' });

    // The two requests' events are stored: the holds go, the credits are what is left, 0.00365706 - 2 x 0.00175997.
    const now = new Date().toISOString();
    await ingest(['r1', 'r2'].map((id) => aUsageEvent({ account_id: 'acct_a', occurred_at: now, request_id: id })));
    await until('both holds are settled', () => authorizer.holds.size === 0);
    const r4 = await req('r4');
    expect(r4).toMatchObject({ status: 402, body: { decision: 'deny', reason: 'credits_exhausted', hold_usd: '0' } });
    expect(r4.body.limit_source).toEqual({ type: 'credits', available_usd: '0.00013712', held_usd: '0' });
    // 60 output tokens cost 0.000137142 > 0.00013712; 59 cost 0.0001348563: the last request that fits.
    expect((await req('r5', { estimated_input_tokens: 0, max_output_tokens: 60 })).status).toBe(402);
    expect(await req('r6', { estimated_input_tokens: 0, max_output_tokens: 59 })).toMatchObject({ status: 200, body: { hold_usd: '0.0001348563' } });
    expect((await call('GET', '/v1/credits?account_id=acct_a')).body.totals.usable_usd).toBe('0.00013712');

    // A top-up is seen at once (tokenmeter_credit_grants), and an account that is not prepaid-only is never checked.
    expect((await call('POST', '/admin/accounts/acct_a/credit-grants', { body: newGrant({ amount_usd: '1', category: 'paid', idempotency_key: 'topup', models: ['gpt-4o'] }) })).status).toBe(201);
    await until('the top-up is in memory', () => credits.pools('acct_a').length === 2);
    // The gpt-4o credit does not cover deepseek-r1: only the 0.00013712 left counts, and r6 holds most of it.
    expect(await req('r7', { estimated_input_tokens: 0, max_output_tokens: 59 })).toMatchObject({
      status: 429,
      body: { reason: 'holds_in_flight', limit_source: { type: 'credits', available_usd: '0.00013712', held_usd: '0.0001348563' } },
    });
    expect((await req('r8', { model: 'gpt-4o' })).status).toBe(200);
    expect((await call('PATCH', '/admin/accounts/acct_a', { body: { prepaid_only: false } })).body.prepaid_only).toBe(false);
    await until('acct_a is not prepaid-only any more', () => !credits.isPrepaidOnly('acct_a'));
    expect((await req('r9')).status).toBe(200);
  });
});
