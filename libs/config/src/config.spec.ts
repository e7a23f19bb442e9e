import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('defaults match the local services so nothing needs setting', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter');
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafka.dlqTopic).toBe('gateway.usage.v1.dlq');
    expect(config.api.port).toBe(3000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'not a broker'],
    ['DATABASE_URL', 'mysql://x'],
    ['TOKENMETER_INGEST_TOKEN', 'short'],
    ['TOKENMETER_ADMIN_KEY', 'too-short-admin-key'],
    ['TOKENMETER_ADMIN_KEY', 'has whitespace in it, long enough'],
  ])('a bad %s stops start-up naming the variable', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable}:`));
  });

  it('requires an ingest token in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/TOKENMETER_INGEST_TOKEN/);
  });

  it('parses a broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'a:9092, b:9093' }).kafka.brokers).toEqual(['a:9092', 'b:9093']);
  });
});

describe('TOKENMETER_ADMIN_KEY', () => {
  it('is optional and passed through when set', () => {
    expect(loadConfig({}).api.adminKey).toBeNull();
    const key = 'tm_live_abcdEFGH_0123456789abcdefghijABCDEFGHIJ01';
    expect(loadConfig({ TOKENMETER_ADMIN_KEY: key }).api.adminKey).toBe(key);
  });
});
