import { aUsageEvent } from '../../../test/factories/usage-events';
import { aBatch, aKafkaMessage, startConsumer } from './__fixtures__/consumer-harness';

/**
 * A rebalance took the partition away mid-batch (kafkajs marks the batch stale): the consumer
 * stops before the next chunk, so the new owner does not race it on the same offsets. What was
 * committed stays committed; the rest is the new owner's.
 */
describe('UsageConsumer: a batch that goes stale', () => {
  const messages = [0, 1, 2, 3].map((i) => aKafkaMessage(40 + i, JSON.stringify(aUsageEvent({ event_id: `evt_${i}` }))));

  it('stops after the chunk in flight and commits only that chunk', async () => {
    const { log, deliver } = await startConsumer(() => undefined, { chunkSize: 2 });
    await deliver(aBatch(log, messages, { stale: () => log.includes('commit') }));

    expect(log).toEqual(['record evt_0,evt_1 | next 42', 'resolve 41', 'commit', 'heartbeat']);
  });

  it('stale from the start: stores nothing and resolves nothing', async () => {
    const { log, deliver } = await startConsumer(() => undefined, { chunkSize: 2 });
    await deliver(aBatch(log, messages, { stale: () => true }));

    expect(log).toEqual([]);
  });

  it('not stale: every chunk is stored and committed in order', async () => {
    const { log, deliver } = await startConsumer(() => undefined, { chunkSize: 2 });
    await deliver(aBatch(log, messages));

    expect(log).toEqual([
      'record evt_0,evt_1 | next 42',
      'resolve 41',
      'commit',
      'heartbeat',
      'record evt_2,evt_3 | next 44',
      'resolve 43',
      'commit',
      'heartbeat',
    ]);
  });
});
