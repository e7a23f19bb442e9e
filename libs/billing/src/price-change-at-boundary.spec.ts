import { version } from './__fixtures__/price-book';
import { ConflictError, ValidationError } from './errors';
import { Decimal as ForeignDecimal } from 'decimal.js';
import { PriceBook } from './pricing';

const OLD = version('10', 'gpt-4o', '2025-01-01T00:00:00Z', { input: '2.50', output: '10.00', cacheRead: '1.25' });
const NEW = version('11', 'gpt-4o', '2025-03-01T00:00:00Z', { input: '2.00', output: '8.00', cacheRead: '1.00' });
const NEWER = version('12', 'gpt-4o', '2025-05-01T12:30:00.500Z', { input: '1.50', output: '6.00', cacheRead: '0.75' });
const OTHER = version('20', 'gpt-4o-mini', '2025-02-01T00:00:00Z', { input: '0.15', output: '0.60', cacheRead: '0.075' });

// Versions are given out of order on purpose: the book must not depend on load order.
const book = new PriceBook([NEWER, OTHER, OLD, NEW]);

describe('a price change applies from its exact instant', () => {
  it('an event 1 ms before effectiveFrom gets the old version', () => {
    expect(book.versionAt('gpt-4o', new Date('2025-02-28T23:59:59.999Z'))?.id).toBe('10');
  });

  it('an event exactly at effectiveFrom gets the new version', () => {
    expect(book.versionAt('gpt-4o', new Date('2025-03-01T00:00:00.000Z'))?.id).toBe('11');
  });

  it('the same holds at a millisecond-precise boundary', () => {
    expect(book.versionAt('gpt-4o', new Date('2025-05-01T12:30:00.499Z'))?.id).toBe('11');
    expect(book.versionAt('gpt-4o', new Date('2025-05-01T12:30:00.500Z'))?.id).toBe('12');
    expect(book.versionAt('gpt-4o', new Date('2030-01-01T00:00:00Z'))?.id).toBe('12');
  });

  it('no price before the first version: the event is unpriced (undefined)', () => {
    expect(book.versionAt('gpt-4o', new Date('2024-12-31T23:59:59.999Z'))).toBeUndefined();
    expect(book.versionAt('gpt-4o', new Date('2025-01-01T00:00:00.000Z'))?.id).toBe('10');
    expect(book.versionAt('gpt-4o-mini', new Date('2025-01-15T00:00:00Z'))).toBeUndefined();
  });

  it('an unknown model is unpriced', () => {
    expect(book.versionAt('gpt-5-turbo-preview', new Date('2025-06-01T00:00:00Z'))).toBeUndefined();
  });

  it('models are listed sorted', () => {
    expect(book.models()).toEqual(['gpt-4o', 'gpt-4o-mini']);
    expect(new PriceBook([]).models()).toEqual([]);
  });

  it('two versions of one model at the same instant are a conflict', () => {
    const clash = version('13', 'gpt-4o', '2025-03-01T00:00:00Z', { input: '9', output: '9', cacheRead: '9' });
    expect(() => new PriceBook([OLD, NEW, clash])).toThrow(ConflictError);
    expect(() => new PriceBook([OLD, NEW, clash])).toThrow(
      'price versions 11 and 13 of gpt-4o share effectiveFrom 2025-03-01T00:00:00.000Z',
    );
  });

  it('a negative rate is refused', () => {
    const negative = version('14', 'gpt-4o', '2025-03-01T00:00:00Z', { input: '-1', output: '9', cacheRead: '9' });
    expect(() => new PriceBook([negative])).toThrow(ValidationError);
    expect(() => new PriceBook([negative])).toThrow('inputPerMTok: price version 14: rate must not be negative (got -1)');
  });

  it('rates from another decimal.js copy are re-wrapped in the project Decimal', () => {
    const foreign = { ...OLD, inputPerMTok: new ForeignDecimal('2.5') };
    const stored = new PriceBook([foreign]).versionAt('gpt-4o', new Date('2025-06-01T00:00:00Z'))!;
    expect(stored.inputPerMTok).not.toBe(foreign.inputPerMTok);
    expect(stored.inputPerMTok.toString()).toBe('2.5');
  });
});
