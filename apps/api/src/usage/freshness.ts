import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Kafka, type Admin } from 'kafkajs';
import { CONFIG, LOGGER, type Logger, type TokenmeterConfig } from '@tokenmeter/config';
import { READ_INGEST_PROGRESS, type IngestProgressRepository } from '@tokenmeter/db';
import { completeUpTo, type PartitionOffsets } from './complete-up-to';

/** How long one computation of complete_up_to is reused: dashboards poll, the broker should not feel it. */
const CACHE_MS = 5_000;
const KAFKA_TIMEOUT_MS = 2_000;

/**
 * Serves complete_up_to from a cache refreshed in the background: a request never waits for the
 * broker except the very first one after start-up (bounded by KAFKA_TIMEOUT_MS).
 *
 * ingest_progress is read where the dashboards read their data (READ_INGEST_PROGRESS: the replica
 * when DATABASE_READ_URL is set). The consumer writes it in the transaction that stores the events
 * it counts, so a replica that has replayed a progress row has replayed those events too, and one
 * that lags shows older progress: complete_up_to falls back with it and never claims events the
 * replica has not replayed (docs/scaling.md, "A read replica for dashboards"). A cached value is
 * older still, and a replica's replay only moves forward, so reads made after it see at least as
 * much (withCompleteUpTo orders them so, also for the first, uncached request).
 */
@Injectable()
export class FreshnessService implements OnApplicationShutdown {
  private cached: { value: Date | null; computedAt: number } | undefined;
  private refreshing: Promise<Date | null> | undefined;
  private admin: Admin | undefined;

  constructor(
    @Inject(READ_INGEST_PROGRESS) private readonly ingestProgress: IngestProgressRepository,
    private readonly kafka: Kafka,
    @Inject(CONFIG) private readonly config: TokenmeterConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /**
   * complete_up_to, then `read`: the read starts after the watermark's ingest_progress was read, so
   * on the primary or a replica (whose replay only moves forward) it sees at least the events the
   * watermark counts. Reads that show complete_up_to beside data go through here.
   */
  async withCompleteUpTo<T>(read: () => Promise<T>): Promise<{ completeUpTo: Date | null; result: T }> {
    const completeUpTo = await this.getCompleteUpTo();
    return { completeUpTo, result: await read() };
  }

  async getCompleteUpTo(): Promise<Date | null> {
    const now = Date.now();
    if (this.cached && now - this.cached.computedAt < CACHE_MS) return this.cached.value;
    const refresh = this.refresh();
    if (this.cached) {
      refresh.catch(() => undefined);
      return this.cached.value;
    }
    return refresh;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.refreshing?.catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }

  private refresh(): Promise<Date | null> {
    this.refreshing ??= this.compute()
      .then((value) => {
        this.cached = { value, computedAt: Date.now() };
        return value;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async compute(): Promise<Date | null> {
    const topic = this.config.kafka.topic;
    const [progress, offsets] = await Promise.all([this.ingestProgress.listIngestProgress(topic), this.fetchOffsets(topic)]);
    return completeUpTo(progress, offsets, offsets === undefined ? new Date() : offsets.checkedAt);
  }

  private async fetchOffsets(topic: string): Promise<(PartitionOffsets[] & { checkedAt: Date }) | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const checkedAt = new Date();
      const offsets = await Promise.race([
        (async () => {
          this.admin ??= this.kafka.admin();
          await this.admin.connect();
          return this.admin.fetchTopicOffsets(topic);
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out reading topic offsets')), KAFKA_TIMEOUT_MS);
        }),
      ]);
      return Object.assign(
        offsets.map((o) => ({ partition: o.partition, high: o.high, low: o.low })),
        { checkedAt },
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message, topic }, 'complete_up_to: topic offsets unavailable, using ingest progress only');
      const admin = this.admin;
      this.admin = undefined;
      await admin?.disconnect().catch(() => undefined);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
