/**
 * Checks for docker-compose.yml without a Docker engine: the file read as Compose reads it (YAML
 * with merge keys, then `${VAR:-default}` interpolation from an empty host environment), validated
 * against the Compose Specification's JSON schema, then the few things the schema cannot see but a
 * first `docker compose up` would trip over. Each check returns its problems as text.
 *
 * The schema is compose-spec's `schema/compose-spec.json` as vendored by dclint (its
 * scripts/download-compose-schema fetches that file from the compose-spec repository), pinned by
 * dclint's exact version in package.json; nothing is fetched at test time.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { loadConfig } from '@tokenmeter/config';

const ROOT = path.resolve(__dirname, '../..');
export const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
export const COMPOSE_SCHEMA_FILE = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Service = { [key: string]: Json };

export function loadComposeSchema(): { $id?: string; title?: string } & Record<string, unknown> {
  return JSON.parse(readFileSync(COMPOSE_SCHEMA_FILE, 'utf8'));
}

/**
 * Compose's interpolation of one string: `$$` is a literal `$`; `${VAR}`/`$VAR`, `${VAR:-default}`
 * (unset or empty), `${VAR-default}` (unset), `${VAR:?message}`/`${VAR?message}` (required) and
 * `${VAR:+alt}`/`${VAR+alt}`. Nested `${...}` in a default is not supported here and is reported.
 */
export function interpolate(value: string, env: Record<string, string | undefined>, problems: string[], where: string): string {
  return value.replace(/\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    if (whole === '$$') return '$';
    if (bare !== undefined) return lookup(bare, undefined, '');
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s.exec(braced!);
    if (!m) {
      problems.push(`${where}: cannot interpolate ${whole}`);
      return '';
    }
    if (m[3]?.includes('${')) problems.push(`${where}: nested interpolation in ${whole} is not checked here`);
    return lookup(m[1], m[2], m[3] ?? '');
  });

  function lookup(name: string, op: string | undefined, arg: string): string {
    const v = env[name];
    const unset = v === undefined;
    const empty = unset || v === '';
    switch (op) {
      case ':-':
        return empty ? arg : v!;
      case '-':
        return unset ? arg : v!;
      case ':?':
      case '?':
        if (op === ':?' ? empty : unset) problems.push(`${where}: ${name} is required (${arg || 'no message'})`);
        return v ?? '';
      case ':+':
        return empty ? '' : arg;
      case '+':
        return unset ? '' : arg;
      default:
        // Compose warns and substitutes a blank string: for us, a variable without a default.
        if (unset) problems.push(`${where}: \${${name}} has no default and is not set`);
        return v ?? '';
    }
  }
}

function interpolateAll(value: Json, env: Record<string, string | undefined>, problems: string[], where: string): Json {
  if (typeof value === 'string') return interpolate(value, env, problems, where);
  if (Array.isArray(value)) return value.map((v, i) => interpolateAll(v, env, problems, `${where}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env, problems, `${where}.${k}`)]));
  }
  return value;
}

/** The YAML read as Compose reads it, interpolated from `hostEnv`. */
type ComposeModel = { [key: string]: Json };

export function readCompose(text: string, hostEnv: Record<string, string | undefined> = {}): { model: ComposeModel | undefined; problems: string[] } {
  // Merge keys (`<<: *anchor`) are YAML 1.1; Compose honours them, so must we.
  const doc = parseDocument(text, { merge: true, prettyErrors: false });
  const problems = [...doc.errors, ...doc.warnings].map((e) => `YAML: ${e.message}`);
  if (doc.errors.length > 0) return { model: undefined, problems };
  const model = interpolateAll(doc.toJS() as ComposeModel, hostEnv, problems, '') as ComposeModel;
  return { model, problems };
}

let compiled: ValidateFunction | undefined;

export function schemaProblems(model: unknown): string[] {
  if (!compiled) {
    const schema = loadComposeSchema();
    // The file names draft-07 by an https URL that Ajv does not know under that spelling; draft-07
    // is Ajv's default, so the schema is compiled as what it declares. The schema uses union types
    // (["string", "number"]) throughout, which Ajv's strict mode only warns about.
    delete schema.$schema;
    compiled = new Ajv({ allErrors: true, allowUnionTypes: true, strictTypes: false }).compile(schema);
  }
  const validate = compiled;
  if (validate(model)) return [];
  return (validate.errors ?? []).map((e) => `schema: ${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
}

function dependencies(service: Service): { name: string; condition: string }[] {
  const d = service.depends_on;
  if (Array.isArray(d)) return d.map((name) => ({ name: String(name), condition: 'service_started' }));
  if (d && typeof d === 'object') {
    return Object.entries(d).map(([name, v]) => ({ name, condition: String((v as { condition?: string })?.condition ?? 'service_started') }));
  }
  return [];
}

function environmentOf(service: Service): Record<string, string> {
  const e = service.environment;
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((item) => String(item).split(/=(.*)/s, 2)).map(([k, v]) => [k, v ?? '']));
  }
  if (e && typeof e === 'object') return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
  return {};
}

/** `ENV` of the Dockerfile's last stage (the image the services run), as KEY=VALUE pairs. */
export function imageEnvironment(dockerfile: string): Record<string, string> {
  const lastStage = dockerfile.split(/^FROM\s/m).pop() ?? '';
  const joined = lastStage.replace(/\\\r?\n/g, ' ');
  const env: Record<string, string> = {};
  for (const line of joined.split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1].trim().split(/\s+/)) {
      const [k, v] = pair.split(/=(.*)/s, 2);
      if (v !== undefined) env[k] = v;
    }
  }
  return env;
}

/**
 * What the schema cannot check:
 * - every `depends_on` names a service; `service_healthy` ones have a healthcheck (or the start
 *   waits forever), `service_completed_successfully` ones are not restarted forever;
 * - no two services publish the same host address and port;
 * - every service built from this repository's Dockerfile starts with a configuration that
 *   libs/config accepts (its `environment` plus the image's ENV, e.g. NODE_ENV=production, where
 *   secrets have no defaults), reaches Postgres, Kafka and Stripe by names that are services of this
 *   file, and runs an entry point (dist/...js) whose TypeScript source exists.
 */
export function semanticProblems(model: ComposeModel, root = ROOT): string[] {
  const problems: string[] = [];
  const services = (model.services ?? {}) as Record<string, Service>;
  const names = new Set(Object.keys(services));
  const imageEnv = imageEnvironment(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
  const published = new Map<string, string>();

  for (const [name, service] of Object.entries(services)) {
    for (const dep of dependencies(service)) {
      const target = services[dep.name];
      if (!target) {
        problems.push(`${name}: depends_on ${dep.name}, which is not a service`);
        continue;
      }
      const healthcheck = target.healthcheck as { disable?: boolean } | undefined;
      if (dep.condition === 'service_healthy' && (!healthcheck || healthcheck.disable === true)) {
        problems.push(`${name}: waits for ${dep.name} to be healthy, but ${dep.name} has no healthcheck`);
      }
      if (dep.condition === 'service_completed_successfully' && ['always', 'unless-stopped'].includes(String(target.restart))) {
        problems.push(`${name}: waits for ${dep.name} to complete, but ${dep.name} restarts ${target.restart}`);
      }
    }

    for (const port of (service.ports ?? []) as Json[]) {
      if (typeof port !== 'string') continue;
      const parts = port.split(':');
      if (parts.length < 2) continue;
      const host = parts.length === 3 ? `${parts[0]}:${parts[1]}` : `0.0.0.0:${parts[0]}`;
      const other = published.get(host);
      if (other) problems.push(`${name}: publishes ${host}, as ${other} does`);
      else published.set(host, name);
    }

    if (service.build === undefined) continue;
    const env = environmentOf(service);
    try {
      loadConfig({ ...imageEnv, ...env });
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
    const hosts: [string, string | undefined][] = [
      ['DATABASE_URL', hostOf(env.DATABASE_URL)],
      ...(env.KAFKA_BROKERS ?? '').split(',').filter(Boolean).map((b): [string, string] => ['KAFKA_BROKERS', b.split(':')[0]]),
      ['STRIPE_API_BASE', hostOf(env.STRIPE_API_BASE)],
    ];
    for (const [variable, host] of hosts) {
      // Unset: the config's default, 127.0.0.1, which inside a container is the container itself.
      if (!host || !names.has(host)) problems.push(`${name}: ${variable} points at ${host ?? 'its default'}, which is not a service of this file`);
    }
    const command = ([] as Json[]).concat(service.command ?? []).join(' ');
    for (const [, compiled] of command.matchAll(/\bdist\/(\S+?)\.js\b/g)) {
      if (!existsSync(path.join(root, `${compiled}.ts`))) problems.push(`${name}: runs dist/${compiled}.js, but ${compiled}.ts does not exist`);
    }
  }
  return problems;
}

function hostOf(url: string | undefined): string | undefined {
  try {
    return url ? new URL(url).hostname : undefined;
  } catch {
    return undefined; // not a URL: libs/config has said so already
  }
}

/** All of it, for one compose file's text. */
export function composeProblems(text: string, root = ROOT): string[] {
  const { model, problems } = readCompose(text);
  if (!model) return problems;
  return [...problems, ...schemaProblems(model), ...semanticProblems(model, root)];
}
