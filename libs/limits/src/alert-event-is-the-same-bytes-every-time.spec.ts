import { alertEvent, alertMessageId, type ClaimedAlert } from './alert-event';

const alert: ClaimedAlert = {
  id: '42',
  budgetId: 'bud_1',
  accountId: 'acct_a',
  apiKeyId: null,
  model: 'gpt-4o',
  window: 'day',
  windowStart: new Date('2026-12-31T00:00:00Z'),
  thresholdPct: '80.0000',
  direction: 'up',
  spendUsd: '80.0000000000000000000001000',
  limitUsd: '100.0000000000',
  enforce: 'hard',
  createdAt: new Date('2026-12-31T13:14:15.161Z'),
};

describe('the alert event', () => {
  it('carries exact decimals without trailing zeros or exponents, and the window it resets with', () => {
    expect(alertEvent(alert)).toEqual({
      type: 'budget.threshold_crossed',
      timestamp: '2026-12-31T13:14:15.161Z',
      data: {
        alert_id: '42',
        budget_id: 'bud_1',
        account_id: 'acct_a',
        api_key_id: null,
        model: 'gpt-4o',
        window: 'day',
        window_start: '2026-12-31T00:00:00.000Z',
        resets_at: '2027-01-01T00:00:00.000Z',
        threshold_pct: '80',
        direction: 'up',
        spend_usd: '80.0000000000000000000001',
        limit_usd: '100',
        enforce: 'hard',
      },
    });
    expect(alertEvent({ ...alert, spendUsd: '0.00000001' }).data.spend_usd).toBe('0.00000001');
  });

  it('a reprice back under a threshold is threshold_recovered; a total budget never resets', () => {
    const e = alertEvent({ ...alert, direction: 'down', window: 'total', windowStart: new Date(0), thresholdPct: '12.5000' });
    expect(e.type).toBe('budget.threshold_recovered');
    expect(e.data).toMatchObject({ direction: 'down', window_start: '1970-01-01T00:00:00.000Z', resets_at: null, threshold_pct: '12.5' });
  });

  it('is a function of the alert row only: published again after a crash, it is the very same JSON under the same id', () => {
    expect(JSON.stringify(alertEvent({ ...alert }))).toBe(JSON.stringify(alertEvent(alert)));
    expect(alertMessageId(alert.id)).toBe('alert_42');
  });
});
