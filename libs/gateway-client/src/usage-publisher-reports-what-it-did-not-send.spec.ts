import { logLevel } from 'kafkajs';
import { NOW, eventObject } from '@tokenmeter/billing/__fixtures__/usage-events';
import { eventIdForRequest } from './event-id';
import type { UsageEventInput } from './usage-message';
import { PublishError, createUsagePublisher, type UsagePublisher } from './usage-publisher';

// Nothing listens on port 1: a publisher that tries to send fails at once (connection refused).
const NO_BROKER = { brokers: ['127.0.0.1:1'], clock: () => NOW, kafkaConfig: { logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 200 } };
const input = (overrides: Record<string, unknown> = {}) => eventObject(overrides) as unknown as UsageEventInput;

describe('the usage publisher accounts for every event', () => {
  let publisher: UsagePublisher;
  beforeEach(() => {
    publisher = createUsagePublisher(NO_BROKER);
  });
  afterEach(() => publisher.close());

  it('answers a call of refused events with their rejections, without going near the broker', async () => {
    const results = await publisher.publishMany([input({ event_id: 'bad id' }), input({ usage: { input_tokens: -1, output_tokens: 0 } })]);
    expect(results).toEqual([
      { status: 'rejected', eventId: 'bad id', code: 'schema', reason: 'event_id must be 1-128 characters from [A-Za-z0-9._:-]' },
      { status: 'rejected', eventId: 'evt_01J0000000000000000000', code: 'invariant', reason: expect.stringContaining('usage.input_tokens') },
    ]);
    expect(await publisher.publishMany([])).toEqual([]);
  });

  it('rejects a call the broker did not take with a PublishError naming the unsent events, minted ids included', async () => {
    const valid = input({ event_id: undefined, request_id: 'req_unsent' });
    const error = await publisher.publishMany([valid, input({ event_id: 'bad id' }), input()]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    const failure = error as PublishError;
    expect(failure.results.map((r) => r.status)).toEqual(['unsent', 'rejected', 'unsent']);
    expect(failure.unsent).toEqual([{ ...valid, event_id: eventIdForRequest('req_unsent') }, input()]);
    expect(failure.message).toMatch(/^2 of 3 usage event\(s\) not acknowledged by the broker: /);
    // publish() reports the same way.
    await expect(publisher.publish(input())).rejects.toBeInstanceOf(PublishError);
  });

  it('refuses to publish once closed', async () => {
    await publisher.close();
    await expect(publisher.publish(input())).rejects.toThrow('the usage publisher is closed');
  });
});
