import type { Logger } from '@tokenmeter/config';
import type { IngestLagProbe } from './completeness';

/** The part of a kafkajs Admin the probe uses. */
export interface TopicOffsetsAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
}

/** The part of a kafkajs Kafka client the probe uses (a Kafka instance satisfies it). */
export interface KafkaAdminFactory {
  admin(): TopicOffsetsAdmin;
}

export interface KafkaLagProbe extends IngestLagProbe {
  disconnect(): Promise<void>;
}

const TIMEOUT_MS = 5_000;

/**
 * The broker's high watermarks of the usage topic, for the close completeness rule ("the
 * consumer is caught up"). If the broker cannot be asked (down, slow, no such topic), no
 * partition counts as caught up: the close then waits for max_occurred_at instead, never the
 * other way round. One admin connection, opened on first use; after a failure it is dropped and
 * the next call opens a new one (a kafkajs admin cannot be reconnected once disconnected).
 */
export function kafkaLagProbe(kafka: KafkaAdminFactory, topic: string, log: Logger, timeoutMs = TIMEOUT_MS): KafkaLagProbe {
  let admin: Promise<TopicOffsetsAdmin> | undefined;
  const drop = async () => {
    const current = admin;
    admin = undefined;
    await current?.then((a) => a.disconnect()).catch(() => undefined);
  };
  return {
    async highWatermarks() {
      let timer: NodeJS.Timeout | undefined;
      try {
        const offsets = await Promise.race([
          (async () => {
            admin ??= (async () => {
              const a = kafka.admin();
              await a.connect();
              return a;
            })();
            return (await admin).fetchTopicOffsets(topic);
          })(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer from the broker in ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return new Map(offsets.map((o) => [o.partition, o.high]));
      } catch (err) {
        log.warn({ err: (err as Error).message, topic }, 'close completeness: topic high watermarks unavailable, using max_occurred_at only');
        // Not awaited: after a timeout the old connection may still be trying to connect.
        void drop();
        return new Map<number, string>();
      } finally {
        clearTimeout(timer);
      }
    },
    disconnect: drop,
  };
}
