import { aUsageEvent } from '../../../test/factories/usage-events';
import { aBatch, aKafkaMessage, startConsumer, type Script } from './__fixtures__/consumer-harness';

/**
 * The database or the broker is away for a while: the consumer pauses the partition and resolves
 * nothing, so kafkajs fetches the same messages again after the back-off. It must never take
 * such a failure for a bad message (that would dead-letter good events as storage_error).
 */
describe('UsageConsumer: a transient failure pauses the partition without resolving', () => {
  const messages = () => [
    aKafkaMessage(20, JSON.stringify(aUsageEvent({ event_id: 'evt_a' }))),
    aKafkaMessage(21, JSON.stringify(aUsageEvent({ event_id: 'evt_b' }))),
  ];
  const adminShutdown = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('database restarting: pause, no resolve, no commit, no dead letter; resumes after the back-off', async () => {
    const { log, deliver, sut, committed } = await startConsumer(() => adminShutdown());
    await deliver(aBatch(log, messages()));

    expect(log).toEqual(['refused evt_a,evt_b | next 22', 'pause']);
    expect(committed).toEqual([]);
    expect(sut.stats.transientFailures).toBe(1);
    jest.advanceTimersByTime(499);
    expect(log).not.toContain('resume');
    jest.advanceTimersByTime(1);
    expect(log[log.length - 1]).toBe('resume');
  });

  it('the back-off doubles while the lane keeps failing and starts over once it stores a chunk', async () => {
    let down = true;
    const { log, deliver } = await startConsumer(() => (down ? adminShutdown() : undefined));
    const resumedAfter = async (): Promise<number> => {
      log.length = 0;
      await deliver(aBatch(log, messages()));
      const start = Date.now();
      while (!log.includes('resume')) jest.advanceTimersByTime(100);
      return Date.now() - start;
    };

    expect(await resumedAfter()).toBe(500);
    expect(await resumedAfter()).toBe(1000);
    expect(await resumedAfter()).toBe(2000);
    down = false;
    log.length = 0;
    await deliver(aBatch(log, messages()));
    expect(log).toEqual(['record evt_a,evt_b | next 22', 'resolve 21', 'commit', 'heartbeat']);
    down = true;
    expect(await resumedAfter()).toBe(500);
  });

  it('the database goes away while a refused chunk is being isolated: pause, nothing dead-lettered', async () => {
    let calls = 0;
    // First the chunk is refused for good (a bad event), then the database is gone.
    const script: Script = () => (++calls === 1 ? Object.assign(new Error('value too long'), { code: '22001' }) : adminShutdown());
    const { log, deliver, deadLetters } = await startConsumer(script);
    await deliver(aBatch(log, messages()));

    expect(log).toEqual(['refused evt_a,evt_b | next 22', 'refused evt_a | next 21', 'pause']);
    expect(deadLetters).toEqual([]);
  });

  it('the broker is away when a refused event is to be dead-lettered: pause, the event is not recorded as rejected', async () => {
    const refusesB: Script = (input) =>
      input.events.some((e) => e.eventId === 'evt_b') ? Object.assign(new Error('value too long'), { code: '22001' }) : undefined;
    const { log, deliver, stored, failDeadLetters } = await startConsumer(refusesB);
    // What kafkajs throws once its own retries are used up: not itself retriable, but it wraps a connection error.
    failDeadLetters(
      Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
        name: 'KafkaJSNumberOfRetriesExceeded',
        retriable: false,
      }),
    );
    await deliver(aBatch(log, messages()));

    expect(log).toEqual(['refused evt_a,evt_b | next 22', 'record evt_a | next 21', 'refused evt_b | next 22', 'pause']);
    expect(stored.some((s) => s.rejected.length > 0)).toBe(false);
  });
});
