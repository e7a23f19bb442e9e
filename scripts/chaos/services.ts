/**
 * The chaos harness's OWN Postgres cluster and Kafka broker, started with scripts/services.sh on
 * other ports and another state directory, so a fault injected here (SIGKILL of the broker, a
 * Postgres restart) never touches the shared services on 5432 / 9092.
 *
 *   Postgres  Debian cluster <ver>/tokenmeter_chaos on 127.0.0.1:5433 (created once, left defined)
 *   Kafka     one KRaft node on 127.0.0.1:19092 (controller 19093), data in ~/.cache/tokenmeter/chaos
 *
 * Overridable with CHAOS_PG_PORT, CHAOS_KAFKA_PORT, CHAOS_KAFKA_CONTROLLER_PORT, CHAOS_STATE_DIR.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';

const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);

export const CHAOS_PG_PORT = Number(process.env.CHAOS_PG_PORT ?? 5433);
export const CHAOS_KAFKA_PORT = Number(process.env.CHAOS_KAFKA_PORT ?? 19092);
const CHAOS_KAFKA_CONTROLLER_PORT = Number(process.env.CHAOS_KAFKA_CONTROLLER_PORT ?? 19093);
const CACHE = process.env.TOKENMETER_CACHE ?? path.join(os.homedir(), '.cache/tokenmeter');
const STATE_DIR = process.env.CHAOS_STATE_DIR ?? path.join(CACHE, 'chaos');
const PG_CLUSTER = 'tokenmeter_chaos';
export const CHAOS_DATABASE = 'tokenmeter_chaos';

if (CHAOS_PG_PORT === 5432 || CHAOS_KAFKA_PORT === 9092) {
  throw new Error('the chaos harness must not run on the shared services ports (5432 / 9092)');
}

export const CHAOS_BROKERS = [`127.0.0.1:${CHAOS_KAFKA_PORT}`];
/**
 * The chaos topic's partitions: 6, the count its cases were planned and measured with (not the
 * deployment default, 120); the ingestors it starts get it as KAFKA_USAGE_TOPIC_PARTITIONS.
 */
export const CHAOS_PARTITIONS = 6;
/** The cluster's maintenance database: admin connections for CREATE/DROP DATABASE. */
export const CHAOS_ADMIN_URL = `postgresql://tokenmeter:tokenmeter@127.0.0.1:${CHAOS_PG_PORT}/postgres`;

const SERVICES_ENV = {
  TOKENMETER_STATE_DIR: STATE_DIR,
  TOKENMETER_PG_PORT: String(CHAOS_PG_PORT),
  TOKENMETER_PG_CLUSTER: PG_CLUSTER,
  TOKENMETER_PG_DATABASES: CHAOS_DATABASE,
  TOKENMETER_KAFKA_PORT: String(CHAOS_KAFKA_PORT),
  TOKENMETER_KAFKA_CONTROLLER_PORT: String(CHAOS_KAFKA_CONTROLLER_PORT),
  KAFKA_HEAP_OPTS: process.env.KAFKA_HEAP_OPTS ?? '-Xms384m -Xmx384m',
};

export function chaosKafka(clientId = 'tokenmeter-chaos'): Kafka {
  return new Kafka({ clientId, brokers: CHAOS_BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 200 } });
}

export function chaosDatabaseUrl(database = CHAOS_DATABASE): string {
  return `postgresql://tokenmeter:tokenmeter@127.0.0.1:${CHAOS_PG_PORT}/${database}`;
}

/** Runs scripts/services.sh with the chaos knobs; its output goes to ours, prefixed. */
function services(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, 'scripts/services.sh'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...SERVICES_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const relay = (d: Buffer) => process.stderr.write(d.toString().replace(/^\[services\]/gm, '[chaos:services]'));
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`services.sh ${args.join(' ')} exited with ${code}`))));
  });
}

export async function servicesUp(): Promise<void> {
  await services(['up', 'postgres', 'kafka']);
}

/** Stops our broker and cluster (the cluster stays defined, so the next run starts in seconds). */
export async function servicesDown(): Promise<void> {
  await services(['down', 'kafka', 'postgres']);
}

export async function startBroker(): Promise<void> {
  await services(['up', 'kafka']);
}

/** The pid of the broker we started (services.sh records it). */
export function brokerPid(): number {
  const file = path.join(STATE_DIR, 'kafka/kafka.pid');
  if (!existsSync(file)) throw new Error(`no broker pid file at ${file}`);
  const pid = Number(readFileSync(file, 'utf8').trim());
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  // Guard against pid reuse and, above all, against ever signalling the shared broker.
  if (!cmdline.includes('kafka.Kafka') || !cmdline.includes(STATE_DIR)) throw new Error(`pid ${pid} is not the chaos broker`);
  return pid;
}

/** SIGKILL the broker (no shutdown, no flush beyond what the OS already has), and wait until it is gone. */
export async function killBroker(): Promise<number> {
  const pid = brokerPid();
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return pid;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`broker pid ${pid} still alive after SIGKILL`);
}

async function clusterVersion(): Promise<string> {
  const { stdout } = await run('pg_lsclusters', ['-h']);
  const line = stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === PG_CLUSTER && f[2] === String(CHAOS_PG_PORT));
  if (!line) throw new Error(`cluster ${PG_CLUSTER} on port ${CHAOS_PG_PORT} not found (pg_lsclusters)`);
  return line[0];
}

/** `pg_ctlcluster <ver> tokenmeter_chaos restart -m fast`: every connection is dropped, in-flight transactions abort. */
export async function restartPostgres(): Promise<void> {
  const ver = await clusterVersion();
  const asRoot = process.getuid?.() === 0;
  const [cmd, args] = asRoot
    ? ['pg_ctlcluster', [ver, PG_CLUSTER, 'restart', '-m', 'fast']]
    : ['sudo', ['pg_ctlcluster', ver, PG_CLUSTER, 'restart', '-m', 'fast']];
  await run(cmd, args as string[]);
}
