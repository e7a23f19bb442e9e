import { readFileSync } from 'node:fs';
import { COMPOSE_FILE, composeProblems, interpolate, loadComposeSchema, readCompose } from '../helpers/compose';

/**
 * docker-compose.yml, checked without a Docker engine (there is none on our machines or in CI):
 * against the Compose Specification's JSON schema and for what the schema cannot see. No services
 * needed; it sits with the integration tests because it checks the repository's files together
 * (compose file, Dockerfile, libs/config, entry points).
 */
describe('docker-compose.yml', () => {
  const text = readFileSync(COMPOSE_FILE, 'utf8');
  /** The file with one edit, as a typo would make it. */
  const mutated = (find: string, replace: string) => {
    const edited = text.replace(find, replace);
    if (edited === text) throw new Error(`"${find}" is not in docker-compose.yml`);
    return composeProblems(edited);
  };

  it('is checked against the published Compose Specification schema', () => {
    const schema = loadComposeSchema();
    expect(schema).toMatchObject({ $id: 'compose_spec.json', title: 'Compose Specification' });
    // The services of this file are all there, after merge keys and interpolation.
    const { model } = readCompose(text);
    expect(Object.keys(model!.services as object).sort()).toEqual(['api', 'ingestor', 'invoicer', 'kafka', 'migrate', 'notifier', 'postgres', 'stripe-mock']);
    expect((model!.services as Record<string, { environment: Record<string, string> }>).api.environment.STRIPE_API_KEY).toBe('sk_test_tokenmeterlocal');
  });

  it('is valid Compose, and every service built from this repository starts with a configuration libs/config accepts', () => {
    expect(composeProblems(text)).toEqual([]);
  });

  it('fails on a misspelt key or value, as `docker compose up` would', () => {
    expect(mutated('    depends_on:\n      postgres:', '    depend_on:\n      postgres:')).toEqual([
      expect.stringMatching(/^schema: \/services\/migrate must NOT have additional properties .*"depend_on"/),
    ]);
    expect(mutated('condition: service_healthy', 'condition: service_healty')).toContainEqual(
      expect.stringMatching(/^schema: \/services\/migrate\/depends_on\/postgres\/condition must be equal to one of the allowed values/),
    );
    const badIndent = mutated('    restart: unless-stopped', '    restart: unless-stopped\n      ports: ["3000"]');
    expect(badIndent.length).toBeGreaterThan(0);
    expect(badIndent.filter((p) => !p.startsWith('YAML: '))).toEqual([]);
  });

  it('fails on what the schema cannot see: a dependency on no service, a missing secret, a wrong host, a wrong entry point', () => {
    expect(mutated('    depends_on:\n      postgres:', '    depends_on:\n      postgress:')).toEqual(['migrate: depends_on postgress, which is not a service']);
    expect(mutated('  STRIPE_API_KEY: ${STRIPE_API_KEY:-sk_test_tokenmeterlocal}\n', '')).toEqual(
      ['migrate', 'api', 'ingestor', 'invoicer', 'notifier'].map((s) => `${s}: Invalid configuration: STRIPE_API_KEY: required when NODE_ENV=production`),
    );
    expect(mutated('KAFKA_BROKERS: kafka:29092', 'KAFKA_BROKERS: kafak:29092')).toEqual(
      ['migrate', 'api', 'ingestor', 'invoicer', 'notifier'].map((s) => `${s}: KAFKA_BROKERS points at kafak, which is not a service of this file`),
    );
    expect(mutated('dist/apps/ingestor/src/main.js', 'dist/apps/ingester/src/main.js')).toEqual([
      'ingestor: runs dist/apps/ingester/src/main.js, but apps/ingester/src/main.ts does not exist',
    ]);
    expect(mutated('    healthcheck:\n      test: ["CMD-SHELL", "pg_isready', '    labels:\n      test: ["CMD-SHELL", "pg_isready')).toEqual(
      expect.arrayContaining(['migrate: waits for postgres to be healthy, but postgres has no healthcheck']),
    );
    expect(mutated('"127.0.0.1:12112:12112"', '"127.0.0.1:3000:12112"')).toEqual(['api: publishes 127.0.0.1:3000, as stripe-mock does']);
  });

  it('interpolates as Compose does', () => {
    const problems: string[] = [];
    const env = { SET: 'x', EMPTY: '' };
    expect(interpolate('$$SET ${SET} $SET ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${SET:+alt} ${EMPTY+alt}', env, problems, 'f')).toBe('$SET x x d  d alt alt');
    expect(problems).toEqual([]);
    interpolate('${UNSET} ${UNSET:?set it}', env, problems, 'f');
    expect(problems).toEqual(['f: ${UNSET} has no default and is not set', 'f: UNSET is required (set it)']);
  });
});
