import { discount, rateCard } from './__fixtures__/overrides';
import { OverrideBook } from './overrides';

const at = (iso: string) => new Date(iso);

describe('which override is in force', () => {
  const book = new OverrideBook([
    discount('1', 'acct_a', null, '10', '2026-01-01T00:00:00Z'),
    discount('2', 'acct_a', 'gpt-4o', '20', '2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z'),
    discount('3', 'acct_a', null, '15', '2026-04-01T00:00:00Z'),
    rateCard('4', 'acct_a', 'gpt-4o', '2026-05-01T00:00:00Z', { input: '1', output: '1', cacheRead: '1' }, '2026-06-01T00:00:00Z'),
  ]);

  it('nothing before the first effective_from', () => {
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2025-12-31T23:59:59.999Z'))).toBeUndefined();
  });

  it('an all-models discount applies to every model', () => {
    expect(book.overrideAt('acct_a', 'claude-sonnet-4', at('2026-01-15T00:00:00Z'))?.id).toBe('1');
  });

  it('a model-specific discount beats an all-models one, only while in force (end exclusive)', () => {
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2026-02-01T00:00:00Z'))?.id).toBe('2');
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2026-02-28T23:59:59.999Z'))?.id).toBe('2');
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2026-03-01T00:00:00Z'))?.id).toBe('1');
  });

  it('among overlapping overrides of the same kind the latest effective_from wins', () => {
    expect(book.overrideAt('acct_a', 'gpt-4o-mini', at('2026-04-01T00:00:00Z'))?.id).toBe('3');
  });

  it('a rate card beats any discount, then the discounts resume when it ends', () => {
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2026-05-10T00:00:00Z'))?.id).toBe('4');
    expect(book.overrideAt('acct_a', 'gpt-4o', at('2026-06-01T00:00:00Z'))?.id).toBe('3');
  });

  it('another account has none', () => {
    expect(book.overrideAt('acct_b', 'gpt-4o', at('2026-05-10T00:00:00Z'))).toBeUndefined();
  });

  it('same effective_from: the one created last (higher id) wins', () => {
    const tie = new OverrideBook([
      discount('9', 'acct_a', null, '10', '2026-01-01T00:00:00Z'),
      discount('10', 'acct_a', null, '30', '2026-01-01T00:00:00Z'),
    ]);
    expect(tie.overrideAt('acct_a', 'x', at('2026-01-02T00:00:00Z'))?.id).toBe('10');
  });

  it('refuses an override that ends before it starts', () => {
    expect(() => new OverrideBook([discount('1', 'acct_a', null, '10', '2026-02-01T00:00:00Z', '2026-02-01T00:00:00Z')])).toThrow(/effectiveTo/);
  });
});
