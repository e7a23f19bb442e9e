/**
 * Samples, every 250 ms, how far the topic has got (its high watermarks, from the broker) and how
 * far ingestion has got (ingest_progress, written in the same transaction as the events), prints a
 * progress line every 2 s, and turns the samples into recovery times around each fault.
 */
import type { Admin, Kafka } from 'kafkajs';
import { Pool } from 'pg';
import type { PublisherState } from './workload';

export interface Sample {
  at: number;
  /** Sum of ingest_progress.next_offset for the topic (messages consumed and stored), or null if the database did not answer. */
  progress: number | null;
  /** Sum of the topic's high watermarks, or null if the broker did not answer. */
  highWatermark: number | null;
}

export interface Fault {
  name: string;
  /** When the fault was injected. */
  at: number;
  /** When the faulted part was back (broker answering, Postgres accepting connections, the new ingestor process started). */
  backAt?: number;
}

export interface Recovery {
  fault: string;
  /** Fault -> the part is back. */
  back_s: number | null;
  /** Fault -> the first messages stored after the part came back. */
  first_stored_s: number | null;
  /** Fault -> ingestion lag (high watermark - stored progress) back under the pre-fault lag (or 1 s of traffic). */
  caught_up_s: number | null;
  /** Longest time without any stored progress, from the fault until caught up. */
  longest_stall_s: number | null;
  /** Lag (messages) at its worst after the fault, until caught up (or the next fault). */
  max_lag: number | null;
}

export class Monitor {
  readonly samples: Sample[] = [];
  readonly faults: Fault[] = [];
  private timer: NodeJS.Timeout | undefined;
  private admin: Admin | undefined;
  private readonly pool: Pool;
  private lastPrint = 0;
  private readonly started = Date.now();
  private running = false;
  private loops: Promise<void>[] = [];
  /** Latest answers; each is polled on its own loop, so a broker that hangs never delays the database samples (or back). */
  private latestProgress: number | null = null;
  /** When the query behind latestProgress started: a sample is dated by what it reflects, not by when it was taken. */
  private latestProgressAt = 0;
  private lastSampledProgressAt = -1;
  private latestHighWatermark: number | null = null;

  constructor(
    private readonly kafka: Kafka,
    databaseUrl: string,
    private readonly topic: string,
    private readonly publisher: PublisherState,
    private readonly log: (msg: string) => void,
    private readonly members: () => number,
  ) {
    this.pool = new Pool({ connectionString: databaseUrl, max: 2, connectionTimeoutMillis: 1000, query_timeout: 2000 });
    this.pool.on('error', () => undefined); // a restart drops idle connections: expected here
  }

  start(): void {
    this.running = true;
    const loop = async (poll: () => Promise<void>) => {
      while (this.running) {
        await poll();
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    this.loops = [
      loop(async () => {
        const at = Date.now();
        this.latestProgress = await this.progress();
        this.latestProgressAt = at;
      }),
      loop(async () => void (this.latestHighWatermark = await this.highWatermark())),
    ];
    this.timer = setInterval(() => this.sample(), 250);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.timer);
    await Promise.all(this.loops);
    await this.admin?.disconnect().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  fault(name: string): Fault {
    const f: Fault = { name, at: Date.now() };
    this.faults.push(f);
    this.log(`FAULT ${name}`);
    return f;
  }

  seconds(at: number): string {
    return ((at - this.started) / 1000).toFixed(1);
  }

  private sample(): void {
    const progress = this.latestProgress;
    const highWatermark = this.latestHighWatermark;
    if (this.latestProgressAt > this.lastSampledProgressAt) {
      this.lastSampledProgressAt = this.latestProgressAt;
      this.samples.push({ at: this.latestProgressAt, progress, highWatermark });
    }
    const now = Date.now();
    if (now - this.lastPrint >= 2000) {
      this.lastPrint = now;
      const lag = progress !== null && highWatermark !== null ? highWatermark - progress : null;
      this.log(
        `t=${this.seconds(now)}s published ${this.publisher.acked}/${this.publisher.total} | topic ${highWatermark ?? 'broker down'} | stored ${progress ?? 'db down'} | lag ${lag ?? '?'} | members ${this.members()}`,
      );
    }
  }

  private async progress(): Promise<number | null> {
    try {
      const { rows } = await this.pool.query('SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM ingest_progress WHERE topic = $1', [this.topic]);
      return Number(rows[0].n);
    } catch {
      return null;
    }
  }

  private async highWatermark(): Promise<number | null> {
    try {
      if (!this.admin) {
        this.admin = this.kafka.admin();
        await this.admin.connect();
      }
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      return offsets.reduce((sum, p) => sum + Number(p.high), 0);
    } catch {
      await this.admin?.disconnect().catch(() => undefined);
      this.admin = undefined;
      return null;
    }
  }

  /** Largest lag seen in the `ms` before `at` (the steady state a recovery must get back to). */
  lagBefore(at: number, ms: number): number {
    let max = 0;
    for (const s of this.samples) {
      if (s.at < at - ms || s.at >= at || s.progress === null || s.highWatermark === null) continue;
      max = Math.max(max, s.highWatermark - s.progress);
    }
    return max;
  }

  /**
   * Recovery from fault `f` (samples up to `until`, the next fault). "Caught up" is the lag back
   * under the steady state before the case's FIRST fault (or one second of traffic, if larger).
   */
  recovery(f: Fault, ratePerS: number, until = Infinity): Recovery {
    const after = this.samples.filter((s) => s.at >= f.at && s.at < until);
    const back = f.backAt ?? f.at;
    const atBack = [...this.samples].reverse().find((s) => s.at <= back && s.progress !== null)?.progress ?? 0;
    const first = after.find((s) => s.at > back && s.progress !== null && s.progress > atBack);
    const threshold = Math.max(this.lagBefore(this.faults[0]?.at ?? f.at, 5000), Math.ceil(ratePerS));
    const caught = first
      ? after.find((s) => s.at >= first.at && s.progress !== null && s.highWatermark !== null && s.highWatermark - s.progress <= threshold)
      : undefined;
    let stall = 0;
    let maxLag = 0;
    let lastProgress: { at: number; n: number } | undefined;
    for (const s of after) {
      if (caught && s.at > caught.at) break;
      if (s.progress !== null && s.highWatermark !== null) maxLag = Math.max(maxLag, s.highWatermark - s.progress);
      if (s.progress === null) continue;
      if (!lastProgress) lastProgress = { at: f.at, n: s.progress };
      if (s.progress > lastProgress.n) lastProgress = { at: s.at, n: s.progress };
      else stall = Math.max(stall, s.at - lastProgress.at);
    }
    const secs = (t: number | undefined) => (t === undefined ? null : Math.round((t - f.at) / 100) / 10);
    return {
      fault: f.name,
      back_s: secs(f.backAt),
      first_stored_s: secs(first?.at),
      caught_up_s: secs(caught?.at),
      longest_stall_s: Math.round(stall / 100) / 10,
      max_lag: maxLag,
    };
  }
}
