/**
 * Ingestors as the real child processes they are in production (`apps/ingestor/src/main.ts`),
 * pointed at the chaos broker and database. The pool plays the supervisor (systemd, Kubernetes):
 * a process that exits when nobody asked it to is counted and started again after a second, which
 * is the contract the ingestor is written for ("exit and let the supervisor restart").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApp, stopApp, type AppProcess } from '../../test/helpers/processes';
import { CHAOS_PARTITIONS } from './services';

/** Each ingestor's whole output is kept here after it exits, for a look after a failed run. */
export const LOG_DIR = path.join(os.tmpdir(), 'tokenmeter-chaos');

export interface IngestorSettings {
  databaseUrl: string;
  brokers: string[];
  topic: string;
  groupId: string;
  env?: Record<string, string>;
}

export interface Member {
  name: string;
  app: AppProcess;
  startedAt: number;
  /** Set when the harness itself stopped or killed it. */
  stopping: boolean;
}

export class IngestorPool {
  readonly members: Member[] = [];
  /** Every process ever started, for the final output checks. */
  readonly all: Member[] = [];
  unexpectedExits: { name: string; code: number | string; at: number; output: string }[] = [];
  private counter = 0;
  private closed = false;

  constructor(
    private readonly settings: IngestorSettings,
    private readonly log: (msg: string) => void,
  ) {}

  start(): Member {
    const name = `ingestor-${++this.counter}`;
    const app = startApp('apps/ingestor/src/main.ts', {
      NODE_ENV: 'development',
      DATABASE_URL: this.settings.databaseUrl,
      KAFKA_BROKERS: this.settings.brokers.join(','),
      KAFKA_USAGE_TOPIC: this.settings.topic,
      KAFKA_USAGE_TOPIC_PARTITIONS: String(CHAOS_PARTITIONS),
      KAFKA_GROUP_ID: this.settings.groupId,
      // 0: the OS picks a free port, so several members on one box never collide.
      INGESTOR_METRICS_PORT: '0',
      DATABASE_POOL_SIZE: '4',
      LOG_LEVEL: 'info',
      // Same exit on an unhandled rejection as Node's default, but it says which query it came from.
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'trace-unhandled.js')}`.trim(),
      ...this.settings.env,
    });
    const member: Member = { name, app, startedAt: Date.now(), stopping: false };
    this.members.push(member);
    this.all.push(member);
    void app.exited.then((code) => {
      mkdirSync(LOG_DIR, { recursive: true });
      writeFileSync(path.join(LOG_DIR, `${this.settings.groupId}.${name}.log`), app.output());
      this.members.splice(this.members.indexOf(member), 1);
      if (member.stopping || this.closed) return;
      const tail = app.output().split('\n').slice(-15).join('\n');
      this.unexpectedExits.push({ name, code, at: Date.now(), output: tail });
      this.log(`${name} exited on its own (${code}); starting another in 1 s, as a supervisor would. Last output:\n${tail}`);
      setTimeout(() => {
        if (!this.closed) this.start();
      }, 1000);
    });
    this.log(`${name} started (pid ${app.child.pid})`);
    return member;
  }

  /** SIGKILL: no shutdown hook runs, the chunk in flight is lost with its transaction. */
  async kill(member: Member): Promise<void> {
    member.stopping = true;
    await stopApp(member.app, 'SIGKILL');
    this.log(`${member.name} SIGKILLed`);
  }

  /** SIGTERM: finishes the chunk in flight, commits, leaves the group. */
  async stop(member: Member): Promise<number | string> {
    member.stopping = true;
    const code = await stopApp(member.app, 'SIGTERM');
    this.log(`${member.name} stopped with SIGTERM (exit ${code})`);
    return code;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.members.slice().map((m) => this.stop(m)));
  }

  /** Members that logged at least one stored chunk. */
  membersThatStored(): string[] {
    return this.all.filter((m) => m.app.output().includes('"msg":"chunk stored"')).map((m) => m.name);
  }
}
