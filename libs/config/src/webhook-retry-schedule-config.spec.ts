import { ConfigError, loadConfig } from './config';

describe('notifier configuration', () => {
  it('defaults: the alerts topic, an exponential retry schedule, a 24 h secret overlap', () => {
    const c = loadConfig({});
    expect(c.alerts).toEqual({ topic: 'tokenmeter.alerts.v1', pollIntervalMs: 5000, batchSize: 100, creditsLowThresholds: '20,5' });
    expect(c.webhooks.retryScheduleMs).toEqual([5000, 30_000, 120_000, 600_000, 3_600_000, 14_400_000, 43_200_000]);
    expect(c.webhooks).toMatchObject({ concurrency: 16, timeoutMs: 10_000, secretOverlapHours: 24 });
  });

  it('reads a schedule with units', () => {
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: '50ms, 2s,1m,1h' }).webhooks.retryScheduleMs).toEqual([50, 2000, 60_000, 3_600_000]);
  });

  it.each(['', '5', '5x', '-1s', '0ms', '8d', '1s,,2s'])('refuses WEBHOOK_RETRY_SCHEDULE=%j naming the variable', (value) => {
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: value })).toThrow(ConfigError);
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: value })).toThrow(/^Invalid configuration: WEBHOOK_RETRY_SCHEDULE:/);
  });
});
