import type { Logger } from '@tokenmeter/config';
import type { IngestLagProbe } from './completeness';

/** The part of a kafkajs Admin the probe uses (kafka.admin() satisfies it). */
export interface TopicOffsetsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
}

export interface KafkaLagProbe extends IngestLagProbe {
  disconnect(): Promise<void>;
}

const TIMEOUT_MS = 5_000;

/**
 * The broker's high watermarks of the usage topic, for the close completeness rule ("the
 * consumer is caught up"). If the broker cannot be asked (down, slow, no such topic), no
 * partition counts as caught up: the close then waits for max_occurred_at instead, never the
 * other way round. The admin connects on first use and reconnects after a failure.
 */
export function kafkaLagProbe(admin: TopicOffsetsAdmin, topic: string, log: Logger, timeoutMs = TIMEOUT_MS): KafkaLagProbe {
  let connected = false;
  return {
    async highWatermarks() {
      let timer: NodeJS.Timeout | undefined;
      try {
        const offsets = await Promise.race([
          (async () => {
            if (!connected) {
              await admin.connect();
              connected = true;
            }
            return admin.fetchTopicOffsets(topic);
          })(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer from the broker in ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return new Map(offsets.map((o) => [o.partition, o.high]));
      } catch (err) {
        log.warn({ err: (err as Error).message, topic }, 'close completeness: topic high watermarks unavailable, using max_occurred_at only');
        if (connected) {
          connected = false;
          await admin.disconnect().catch(() => undefined);
        }
        return new Map<number, string>();
      } finally {
        clearTimeout(timer);
      }
    },
    async disconnect() {
      if (!connected) return;
      connected = false;
      await admin.disconnect().catch(() => undefined);
    },
  };
}
