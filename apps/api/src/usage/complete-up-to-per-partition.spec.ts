import type { IngestProgressRecord } from '@tokenmeter/db';
import { completeUpTo } from './complete-up-to';

const checkedAt = new Date('2026-11-20T12:00:00.000Z');
const progress = (partition: number, nextOffset: string, maxOccurredAt: string | null): IngestProgressRecord => ({
  topic: 'gateway.usage.v1',
  partition,
  nextOffset,
  maxOccurredAt: maxOccurredAt === null ? null : new Date(maxOccurredAt),
  updatedAt: checkedAt,
});

describe('complete_up_to', () => {
  it('is the moment offsets were read when every partition is caught up', () => {
    const rows = [progress(0, '10', '2026-11-20T11:00:00Z'), progress(1, '5', '2026-11-20T09:00:00Z')];
    const offsets = [{ partition: 0, high: '10', low: '0' }, { partition: 1, high: '5', low: '0' }];
    expect(completeUpTo(rows, offsets, checkedAt)).toEqual(checkedAt);
  });

  it('is held back by a lagging partition to the latest occurred_at ingested from it', () => {
    const rows = [progress(0, '10', '2026-11-20T11:00:00Z'), progress(1, '5', '2026-11-20T09:00:00Z')];
    const offsets = [{ partition: 0, high: '10', low: '0' }, { partition: 1, high: '7', low: '0' }];
    expect(completeUpTo(rows, offsets, checkedAt)).toEqual(new Date('2026-11-20T09:00:00Z'));
  });

  it('counts an empty partition (or one emptied by retention) as caught up, with no progress row at all', () => {
    const rows = [progress(0, '10', '2026-11-20T11:00:00Z')];
    const offsets = [{ partition: 0, high: '10', low: '0' }, { partition: 1, high: '3', low: '3' }];
    expect(completeUpTo(rows, offsets, checkedAt)).toEqual(checkedAt);
  });

  it('is unknown (null) while a partition with messages has ingested nothing', () => {
    const offsets = [{ partition: 0, high: '10', low: '0' }];
    expect(completeUpTo([], offsets, checkedAt)).toBeNull();
    expect(completeUpTo([progress(0, '4', null)], offsets, checkedAt)).toBeNull();
  });

  it('falls back to the minimum max_occurred_at when the broker cannot be asked', () => {
    const rows = [progress(0, '10', '2026-11-20T11:00:00Z'), progress(1, '5', '2026-11-20T09:00:00Z')];
    expect(completeUpTo(rows, undefined, checkedAt)).toEqual(new Date('2026-11-20T09:00:00Z'));
    expect(completeUpTo([], undefined, checkedAt)).toBeNull();
  });
});
