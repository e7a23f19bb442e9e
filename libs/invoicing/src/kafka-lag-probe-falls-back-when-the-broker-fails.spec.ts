import pino from 'pino';
import { kafkaLagProbe, type TopicOffsetsAdmin } from './kafka-lag-probe';

/** A broker whose admin connections answer, fail or hang as told (the faults a live broker will not stage). */
function broker(behaviour: () => 'answer' | 'fail' | 'hang') {
  const admins: { connected: boolean; disconnected: boolean }[] = [];
  return {
    admins,
    admin(): TopicOffsetsAdmin {
      const state = { connected: false, disconnected: false };
      admins.push(state);
      return {
        connect: async () => void (state.connected = true),
        disconnect: async () => void (state.disconnected = true),
        fetchTopicOffsets: async () => {
          if (state.disconnected) throw new Error('write after end');
          const b = behaviour();
          if (b === 'fail') throw new Error('This server does not host this topic-partition');
          if (b === 'hang') return new Promise(() => undefined);
          return [{ partition: 0, high: '42', low: '0' }, { partition: 1, high: '7', low: '7' }];
        },
      };
    },
  };
}

describe('the broker high-watermark probe of the close completeness rule', () => {
  const log = pino({ level: 'silent' });

  it('reads high watermarks per partition through one admin connection', async () => {
    const kafka = broker(() => 'answer');
    const probe = kafkaLagProbe(kafka, 'usage', log);
    expect(await probe.highWatermarks()).toEqual(new Map([[0, '42'], [1, '7']]));
    await probe.highWatermarks();
    expect(kafka.admins).toHaveLength(1);
    await probe.disconnect();
    expect(kafka.admins[0].disconnected).toBe(true);
  });

  it('answers "nothing known" when the broker fails or hangs, and opens a fresh connection next time', async () => {
    let next: 'answer' | 'fail' | 'hang' = 'fail';
    const kafka = broker(() => next);
    const probe = kafkaLagProbe(kafka, 'usage', log, 50);
    expect(await probe.highWatermarks()).toEqual(new Map());
    next = 'hang';
    expect(await probe.highWatermarks()).toEqual(new Map());
    next = 'answer';
    expect((await probe.highWatermarks()).get(0)).toBe('42');
    // A kafkajs admin cannot be reconnected once disconnected: each failure dropped its connection.
    expect(kafka.admins.map((a) => a.disconnected)).toEqual([true, true, false]);
  });
});
