import { ConfigError, DEFAULT_DATABASE_URL, loadConfig } from './config';

describe('loadConfig', () => {
  it('defaults match the local services so nothing needs setting', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe(DEFAULT_DATABASE_URL);
    expect(new URL(DEFAULT_DATABASE_URL).host).toBe('127.0.0.1:5432'); // scripts/services.sh's Postgres
    expect(config.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(config.kafka.dlqTopic).toBe('gateway.usage.v1.dlq');
    expect(config.api.port).toBe(3000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'not a broker'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_READ_URL', 'replica.internal:5432/tokenmeter'],
    ['TOKENMETER_INGEST_TOKEN', 'short'],
    ['TOKENMETER_ADMIN_KEY', 'too-short-admin-key'],
    ['TOKENMETER_ADMIN_KEY', 'has whitespace in it, long enough'],
    ['API_TRUST_PROXY', 'true'],
    ['API_TRUST_PROXY', '10.0.0.0/33'],
    ['API_TRUST_PROXY', 'loopback, proxy.internal'],
    ['AUTH_FAILURE_LIMIT', '0'],
    ['AUTH_FAILURE_WINDOW_SECONDS', '1.5'],
  ])('a bad %s stops start-up naming the variable', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(new RegExp(`^Invalid configuration: ${variable}:`));
  });

  it('requires an ingest token in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/TOKENMETER_INGEST_TOKEN/);
  });

  it('reads dashboards from the primary unless DATABASE_READ_URL names a replica', () => {
    expect(loadConfig({}).databaseReadUrl).toBeNull();
    const url = 'postgresql://tokenmeter:tokenmeter@127.0.0.1:5434/tokenmeter';
    expect(loadConfig({ DATABASE_READ_URL: url }).databaseReadUrl).toBe(url);
  });

  it('parses a broker list', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'a:9092, b:9093' }).kafka.brokers).toEqual(['a:9092', 'b:9093']);
  });
});

describe('API_TRUST_PROXY and the failed-authentication limit', () => {
  it('default to the TCP peer as the client and 20 failures a minute', () => {
    const { api } = loadConfig({});
    expect(api.trustProxy).toBe(false);
    expect(api.authFailures).toEqual({ limit: 20, windowSeconds: 60 });
  });

  it('take a hop count or a list of proxy addresses, subnets and named ranges', () => {
    expect(loadConfig({ API_TRUST_PROXY: '1' }).api.trustProxy).toBe(1);
    expect(loadConfig({ API_TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::1' }).api.trustProxy).toEqual(['loopback', '10.0.0.0/8', 'fd00::1']);
    expect(loadConfig({ API_TRUST_PROXY: 'false' }).api.trustProxy).toBe(false);
  });

  it('refuses "true" with the reason', () => {
    expect(() => loadConfig({ API_TRUST_PROXY: 'true' })).toThrow(/choose its own address/);
  });
});

describe('TOKENMETER_ADMIN_KEY', () => {
  it('is optional and passed through when set', () => {
    expect(loadConfig({}).api.adminKey).toBeNull();
    const key = 'tm_live_abcdEFGH_0123456789abcdefghijABCDEFGHIJ01';
    expect(loadConfig({ TOKENMETER_ADMIN_KEY: key }).api.adminKey).toBe(key);
  });
});
