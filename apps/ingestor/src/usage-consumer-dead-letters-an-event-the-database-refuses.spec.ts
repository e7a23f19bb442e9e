import { ValidationError } from '@tokenmeter/billing';
import { aUsageEvent } from '../../../test/factories/usage-events';
import { aBatch, aKafkaMessage, DLQ_TOPIC, PARTITION, startConsumer, TOPIC, type Script } from './__fixtures__/consumer-harness';

/**
 * A chunk the database refuses for good (not a connection problem): the consumer stores the
 * chunk message by message, dead-letters the one event the database refuses as `storage_error`
 * (DLQ first, then the rejected_events row with the partition's progress), stores the others,
 * and commits past the whole chunk. Without this the partition would retry the chunk forever.
 */
describe('UsageConsumer: a chunk the database refuses for good', () => {
  const good1 = JSON.stringify(aUsageEvent({ event_id: 'evt_good_1' }));
  const poison = JSON.stringify(aUsageEvent({ event_id: 'evt_poison' }));
  const good2 = JSON.stringify(aUsageEvent({ event_id: 'evt_good_2' }));
  const refusal = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
  // The database refuses any write that contains evt_poison, as Postgres refuses the whole COPY.
  const refusesPoison: Script = (input) => (input.events.some((e) => e.eventId === 'evt_poison') ? refusal : undefined);

  it('stores the others, dead-letters the refused one as storage_error, then commits past the chunk', async () => {
    const { log, committed, deliver, sut } = await startConsumer(refusesPoison);
    await deliver(aBatch(log, [aKafkaMessage(10, good1), aKafkaMessage(11, poison), aKafkaMessage(12, good2)], { behind: 5 }));

    expect(log).toEqual([
      'refused evt_good_1,evt_poison,evt_good_2 | next 13',
      'record evt_good_1 | next 11',
      'refused evt_poison | next 12',
      'dlq 11:storage_error',
      'record - | rejected storage_error@11 | next 12',
      'record evt_good_2 | next 13',
      'resolve 12',
      'commit',
      'heartbeat',
    ]);
    expect(committed.map((c) => c.outcomes.map((o) => o.status))).toEqual([['accepted'], ['rejected'], ['accepted']]);
    expect(committed.map((c) => c.lag)).toEqual([7n, 6n, 5n]);
    expect(sut.stats).toMatchObject({ rejected: 1, transientFailures: 0 });
  });

  it('the dead letter and the rejected_events row carry the message as sent and say why', async () => {
    const { log, deadLetters, stored, deliver } = await startConsumer(refusesPoison);
    await deliver(aBatch(log, [aKafkaMessage(10, good1), aKafkaMessage(11, poison, 'acct_poison')]));

    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({ topic: DLQ_TOPIC, acks: -1 });
    const [letter] = deadLetters[0].messages;
    expect(letter.key?.toString()).toBe('acct_poison');
    expect(letter.value?.toString()).toBe(poison);
    expect(letter.headers).toEqual({
      'x-reject-code': 'storage_error',
      'x-reject-reason': 'database refused the event (SQLSTATE 22021): invalid byte sequence for encoding "UTF8": 0x00',
      'x-original-topic': TOPIC,
      'x-original-partition': String(PARTITION),
      'x-original-offset': '11',
    });

    const rejectedWrite = stored.find((s) => s.rejected.length > 0)!;
    expect(rejectedWrite.rejected).toEqual([
      {
        source: 'kafka',
        topic: TOPIC,
        partition: PARTITION,
        offset: '11',
        messageKey: 'acct_poison',
        eventId: null,
        rawPayload: poison,
        reasonCode: 'storage_error',
        reason: 'database refused the event (SQLSTATE 22021): invalid byte sequence for encoding "UTF8": 0x00',
      },
    ]);
    expect(rejectedWrite.progress).toEqual([{ topic: TOPIC, partition: PARTITION, nextOffset: '12', maxOccurredAt: null }]);
  });

  it('a validation rejection in the same chunk is dead-lettered once, with its own code', async () => {
    const { log, deliver } = await startConsumer(refusesPoison);
    await deliver(aBatch(log, [aKafkaMessage(10, '{not json'), aKafkaMessage(11, poison)]));

    // The chunk's attempt publishes invalid_json before its write fails; isolation publishes it
    // again before storing it (the DLQ is at-least-once, and deduplicated by topic/partition/offset).
    expect(log).toEqual([
      'dlq 10:invalid_json',
      'refused evt_poison | rejected invalid_json@10 | next 12',
      'dlq 10:invalid_json',
      'record - | rejected invalid_json@10 | next 11',
      'refused evt_poison | next 12',
      'dlq 11:storage_error',
      'record - | rejected storage_error@11 | next 12',
      'resolve 11',
      'commit',
      'heartbeat',
    ]);
  });

  it('the reason says what refused the event: a domain error while pricing or storing, or any other failure', async () => {
    const cases: [Error, string][] = [
      [new ValidationError('usage.prompt_tokens', 'out of range'), 'the event could not be priced or stored (validation): usage.prompt_tokens: out of range'],
      [new Error('row too wide'), 'the event could not be stored: row too wide'],
    ];
    for (const [err, reason] of cases) {
      const { deadLetters, stored, deliver, log } = await startConsumer((input) => (input.events.some((e) => e.eventId === 'evt_poison') ? err : undefined));
      await deliver(aBatch(log, [aKafkaMessage(11, poison)]));
      expect(deadLetters.map((d) => d.messages[0].headers?.['x-reject-reason'])).toEqual([reason]);
      expect(stored.flatMap((s) => s.rejected.map((r) => r.reason))).toEqual([reason]);
    }
  });
});
