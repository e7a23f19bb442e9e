import { HoldBook, type Hold } from './holds';

const hold = (accountId: string, requestId: string, createdAtMs: number): Hold => ({
  accountId,
  requestId,
  units: 10n,
  budgetIds: [`budget-${accountId}`],
  createdAtMs,
  expiresAtMs: createdAtMs + 60_000,
});

const ids = (holds: Iterable<Hold>) => [...holds].map((h) => h.requestId);

describe('HoldBook settlement order', () => {
  it('gives an account its holds oldest first, and a requeued hold goes last', () => {
    const book = new HoldBook();
    for (const [i, r] of ['r1', 'r2', 'r3'].entries()) book.add(hold('a', r, 1_000 + i));
    book.add(hold('b', 'other', 1_500));

    expect(ids(book.ofAccount('a'))).toEqual(['r1', 'r2', 'r3']);
    book.requeue(book.get('a', 'r1')!);
    expect(ids(book.ofAccount('a'))).toEqual(['r2', 'r3', 'r1']);
    expect(ids(book.ofAccount('b'))).toEqual(['other']);
  });

  it('keeps expiry in insertion order and the sums whatever the settlement order', () => {
    const book = new HoldBook();
    book.add(hold('a', 'r1', 1_000));
    book.add(hold('a', 'r2', 2_000));
    book.requeue(book.get('a', 'r1')!);

    expect(book.earliestExpiryOn('budget-a')).toBe(61_000);
    expect(ids(book.expire(61_000))).toEqual(['r1']);
    expect(book.unitsOn('budget-a')).toBe(10n);
    expect(ids(book.ofAccount('a'))).toEqual(['r2']);
  });

  it('ignores a requeue of a hold already released', () => {
    const book = new HoldBook();
    const h = hold('a', 'r1', 1_000);
    book.add(h);
    book.release(h);
    book.requeue(h);
    expect(ids(book.ofAccount('a'))).toEqual([]);
    expect(book.size).toBe(0);
  });
});
