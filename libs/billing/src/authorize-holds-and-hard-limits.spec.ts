import { discount } from './__fixtures__/overrides';
import { version } from './__fixtures__/price-book';
import { toCostUnits } from './cost-units';
import { usd } from './money';
import { OverrideBook } from './overrides';
import { PriceBook } from './pricing';
import {
  applicableBudgets,
  decideAuthorize,
  estimateHold,
  type AuthorizeBudget,
  type BudgetPosition,
} from './spend-authorize';

const u = (amount: string) => toCostUnits(usd(amount));
const now = new Date('2026-06-15T12:00:00Z');
const opts = { now, maxRetryAfterSeconds: 5 };

// 1 USD per million input tokens, 4 per million output: 1 token in = 0.000001, 1 token out = 0.000004.
const book = new PriceBook([
  version('1', 'm1', '2026-01-01T00:00:00Z', { input: '1', output: '4', cacheRead: '0.1' }),
  version('2', 'm1', '2026-07-01T00:00:00Z', { input: '2', output: '8', cacheRead: '0.2' }),
]);
const none = new OverrideBook([]);

function budget(over: Partial<AuthorizeBudget> = {}): AuthorizeBudget {
  return { id: 'b1', accountId: 'acct_a', apiKeyId: null, model: null, limitUnits: u('10'), window: 'month', enforce: 'hard', ...over };
}

function position(b: AuthorizeBudget, spend: string, holds = '0', earliestHoldExpiry: Date | null = null): BudgetPosition {
  return { budget: b, windowStart: new Date('2026-06-01T00:00:00Z'), spendUnits: u(spend), holdUnits: u(holds), earliestHoldExpiry };
}

describe('the hold estimate prices input plus the maximum output at the rates in force now', () => {
  const request = { accountId: 'acct_a', apiKeyId: null, model: 'm1', estimatedInputTokens: 1000, maxOutputTokens: 500 };

  it('uses max_output_tokens when the request sends it', () => {
    const hold = estimateHold(book, none, { contextWindow: null, maxOutputTokens: 4096 }, 1000, request, now);
    // 1000 x 0.000001 + 500 x 0.000004 = 0.003, exactly.
    expect(hold).toEqual({ units: u('0.003'), outputTokens: 500, outputFrom: 'max_output_tokens', priced: true });
  });

  it("falls back to the model's cap, then to the configured fallback", () => {
    const noMax = { ...request, maxOutputTokens: null };
    expect(estimateHold(book, none, { contextWindow: null, maxOutputTokens: 4096 }, 1000, noMax, now)).toMatchObject({
      units: u('0.017384'),
      outputFrom: 'model_cap',
    });
    expect(estimateHold(book, none, { contextWindow: null, maxOutputTokens: null }, 250, noMax, now)).toMatchObject({
      units: u('0.002'),
      outputTokens: 250,
      outputFrom: 'fallback',
    });
    expect(estimateHold(book, none, undefined, 250, noMax, now).outputFrom).toBe('fallback');
  });

  it('prices at the version in force now, with the account override', () => {
    expect(estimateHold(book, none, undefined, 0, request, new Date('2026-07-01T00:00:00Z')).units).toBe(u('0.006'));
    const off = new OverrideBook([discount('1', 'acct_a', 'm1', '12.5', '2026-01-01T00:00:00Z')]);
    expect(estimateHold(book, off, undefined, 0, request, now).units).toBe(u('0.002625'));
    expect(estimateHold(book, off, undefined, 0, { ...request, accountId: 'acct_b' }, now).units).toBe(u('0.003'));
  });

  it('estimates 0 for a model with no price in force (its event will be stored unpriced)', () => {
    expect(estimateHold(book, none, undefined, 0, { ...request, model: 'unknown' }, now)).toMatchObject({ units: 0n, priced: false });
  });
});

describe('which budgets apply', () => {
  const account = budget({ id: 'acct' });
  const key = budget({ id: 'key', apiKeyId: 'k1' });
  const model = budget({ id: 'model', model: 'm1' });
  const keyModel = budget({ id: 'keymodel', apiKeyId: 'k1', model: 'm1' });
  const other = budget({ id: 'other', accountId: 'acct_b' });
  const all = [account, key, model, keyModel, other];

  it("the account's, its key's and its model's, never another key's, model's or account's", () => {
    expect(applicableBudgets(all, { accountId: 'acct_a', apiKeyId: 'k1', model: 'm1' }).map((b) => b.id)).toEqual(['acct', 'key', 'model', 'keymodel']);
    expect(applicableBudgets(all, { accountId: 'acct_a', apiKeyId: 'k2', model: 'm1' }).map((b) => b.id)).toEqual(['acct', 'model']);
    expect(applicableBudgets(all, { accountId: 'acct_a', apiKeyId: null, model: 'm2' }).map((b) => b.id)).toEqual(['acct']);
    expect(applicableBudgets(all, { accountId: 'acct_c', apiKeyId: null, model: 'm1' })).toEqual([]);
  });
});

describe('hard limits decide, exactly', () => {
  const hard = budget();

  it('allows a request that reaches the limit exactly, refuses one unit more with 402', () => {
    const fits = decideAuthorize([position(hard, '9.997')], u('0.003'), opts);
    expect(fits).toEqual({ decision: 'allow', remainingUnits: 0n });
    const over = decideAuthorize([position(hard, '9.997')], u('0.003') + 1n, opts);
    expect(over).toMatchObject({ decision: 'deny', status: 402, reason: 'budget_exceeded', remainingUnits: u('0.003') });
    if (over.decision !== 'deny') throw new Error('expected a deny');
    expect(over.limitSource).toEqual({
      budgetId: 'b1',
      scope: 'account',
      window: 'month',
      windowStart: new Date('2026-06-01T00:00:00Z'),
      resetsAt: new Date('2026-07-01T00:00:00Z'),
      limitUnits: u('10'),
      spendUnits: u('9.997'),
    });
  });

  it('refuses everything, even a free request, once the limit is spent', () => {
    expect(decideAuthorize([position(hard, '10')], 0n, opts)).toMatchObject({ status: 402, remainingUnits: 0n });
    expect(decideAuthorize([position(hard, '10')], 0n, opts)).toMatchObject({ status: 402 });
    expect(decideAuthorize([position(hard, '9.9999999999999999999999')], 0n, opts)).toMatchObject({ decision: 'allow' });
  });

  it('answers 429 when only holds of requests in flight fill the remainder, with Retry-After until the earliest hold expires', () => {
    const expiry = new Date(now.getTime() + 2_500);
    const d = decideAuthorize([position(hard, '9', '0.998', expiry)], u('0.003'), opts);
    expect(d).toMatchObject({ decision: 'deny', status: 429, reason: 'holds_in_flight', retryAfterSeconds: 3, remainingUnits: u('0.002') });
    // Holds that leave exactly the estimate: allowed, nothing left.
    expect(decideAuthorize([position(hard, '9', '0.997', expiry)], u('0.003'), opts)).toEqual({ decision: 'allow', remainingUnits: 0n });
    // Retry-After is capped small, and at least a second.
    expect(decideAuthorize([position(hard, '9', '1', new Date(now.getTime() + 600_000))], u('0.003'), opts)).toMatchObject({ retryAfterSeconds: 5 });
    expect(decideAuthorize([position(hard, '9', '1', new Date(now.getTime() - 10))], u('0.003'), opts)).toMatchObject({ retryAfterSeconds: 1 });
  });

  it('a soft budget over its limit still allows, and says so', () => {
    const soft = budget({ id: 'soft', enforce: 'soft', limitUnits: u('1') });
    const d = decideAuthorize([position(soft, '5')], u('0.003'), opts);
    expect(d).toMatchObject({ decision: 'allow', reason: 'soft_limit_exceeded', remainingUnits: null });
    expect(d.limitSource?.budgetId).toBe('soft');
    expect(decideAuthorize([position(soft, '0.5')], u('0.003'), opts)).toEqual({ decision: 'allow', remainingUnits: null });
  });

  it('with no budget: allowed, no remaining amount', () => {
    expect(decideAuthorize([], u('1000'), opts)).toEqual({ decision: 'allow', remainingUnits: null });
  });

  it('the tightest hard budget gives remaining; a 402 on one wins over a 429 on another; the 402 named is the one that resets last', () => {
    const month = budget({ id: 'month', limitUnits: u('10') });
    const keyDay = budget({ id: 'day', apiKeyId: 'k1', window: 'day', limitUnits: u('1') });
    const total = budget({ id: 'total', model: 'm1', window: 'total', limitUnits: u('2') });
    const ok = decideAuthorize([position(month, '5'), { ...position(keyDay, '0.5'), windowStart: new Date('2026-06-15T00:00:00Z') }], u('0.1'), opts);
    expect(ok).toEqual({ decision: 'allow', remainingUnits: u('0.4') });

    const both = decideAuthorize(
      [position(month, '5', '4.95', new Date(now.getTime() + 1000)), { ...position(keyDay, '1'), windowStart: new Date('2026-06-15T00:00:00Z') }],
      u('0.1'),
      opts,
    );
    expect(both).toMatchObject({ status: 402, limitSource: { budgetId: 'day', scope: 'api_key', resetsAt: new Date('2026-06-16T00:00:00Z') } });

    const lasting = decideAuthorize(
      [{ ...position(keyDay, '1'), windowStart: new Date('2026-06-15T00:00:00Z') }, position(month, '10'), position(total, '2')],
      0n,
      opts,
    );
    expect(lasting).toMatchObject({ status: 402, limitSource: { budgetId: 'total', scope: 'model', resetsAt: null } });
  });
});
