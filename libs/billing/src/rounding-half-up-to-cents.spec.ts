import { Decimal as ForeignDecimal } from 'decimal.js';
import { ValidationError } from './errors';
import { Decimal, ZERO, minorUnitsToUsdString, percentage, roundToCents, toMinorUnits, usd } from './money';

describe('invoice lines round half away from zero to cents, once', () => {
  it.each([
    ['0.005', '0.01', 1n],
    ['0.0049999', '0', 0n],
    ['1.115', '1.12', 112n],
    ['1.114999999999999999999', '1.11', 111n],
    ['2.675', '2.68', 268n], // the classic binary-float trap: 2.675 as a double rounds to 2.67
    ['0.015', '0.02', 2n],
    ['10', '10', 1000n],
    ['0', '0', 0n],
    ['-0.005', '-0.01', -1n],
    ['-1.115', '-1.12', -112n],
    ['-0.004', '0', 0n],
    ['123456789012345.675', '123456789012345.68', 12345678901234568n],
  ])('%s USD -> %s USD = %s cents', (amount, rounded, minor) => {
    expect(roundToCents(usd(amount)).toString()).toBe(rounded);
    expect(toMinorUnits(usd(amount))).toBe(minor);
  });

  it('summing exact costs then rounding once differs from rounding each event', () => {
    // A million requests at $0.004 each: exact sum is $4,000; per-event rounding would bill $0.
    const perRequestUsd = usd('0.004');
    const exactTotal = perRequestUsd.times(1_000_000);
    expect(toMinorUnits(exactTotal)).toBe(400_000n);
    expect(roundToCents(perRequestUsd).times(1_000_000).toString()).toBe('0');
  });

  it('rounding does not depend on the global decimal.js configuration', () => {
    const saved = { precision: ForeignDecimal.precision, rounding: ForeignDecimal.rounding };
    ForeignDecimal.set({ precision: 5, rounding: ForeignDecimal.ROUND_DOWN });
    try {
      expect(roundToCents(usd('1234567.115')).toString()).toBe('1234567.12');
      expect(usd('0.1').plus(usd('0.2')).toString()).toBe('0.3');
    } finally {
      ForeignDecimal.set(saved);
    }
  });

  it('the project Decimal carries 60 significant digits and never prints exponents', () => {
    expect(usd('1').dividedBy(3).toString()).toBe('0.' + '3'.repeat(60));
    expect(usd('2').dividedBy(3).toString()).toBe('0.' + '6'.repeat(59) + '7'); // the 61st digit rounds the 60th, it is not cut off
    expect(usd('0.0000000000005').toString()).toBe('0.0000000000005');
    expect(usd('1e25').toString()).toBe('10000000000000000000000000');
    expect(ZERO.toString()).toBe('0');
  });
});

describe('usd() accepts exact decimal strings and finite Decimals only', () => {
  it.each(['0', '2.50', '-3.75', '0.0000005714', '1e-7', '12345678901234567890.1234567890'])('accepts %s', (text) => {
    expect(usd(text).equals(new Decimal(text))).toBe(true);
  });

  it('keeps the digits it was given', () => {
    expect(usd('0.5714000000').toString()).toBe('0.5714');
    expect(usd('0.1').plus(usd('0.2')).toString()).toBe('0.3');
  });

  it.each(['', ' 1', '1 ', '1,5', '.5', '1.', '0x10', '0b1', 'Infinity', '-Infinity', 'NaN', '1e', '$1', '1.2.3', '١'])(
    'rejects %j',
    (text) => {
      expect(() => usd(text)).toThrow(ValidationError);
    },
  );

  it('names the field in the error', () => {
    expect(() => usd('abc')).toThrow('amountUsd: "abc" is not a decimal number');
  });

  it('rejects non-finite Decimals and re-wraps foreign ones', () => {
    expect(() => usd(new Decimal(Infinity))).toThrow(ValidationError);
    expect(() => usd(new Decimal(NaN))).toThrow(ValidationError);
    const foreign = new ForeignDecimal('1.5');
    const wrapped = usd(foreign);
    expect(wrapped.constructor).toBe(Decimal);
    expect(wrapped.toString()).toBe('1.5');
    const own = usd('2');
    expect(usd(own)).toBe(own);
  });
});

describe('percentage() parses like usd() and names a percentage, not money, in its errors', () => {
  it('keeps the digits it was given, as the project Decimal', () => {
    const p = percentage('12.3400');
    expect(p.toString()).toBe('12.34');
    expect(p.constructor).toBe(Decimal);
    expect(percentage(new ForeignDecimal('80')).constructor).toBe(Decimal);
  });

  it.each(['', '1,5', '0x10', 'NaN', '12%'])('rejects %j', (text) => {
    expect(() => percentage(text)).toThrow(ValidationError);
  });

  it('names the field in the error', () => {
    expect(() => percentage('abc')).toThrow('percent: "abc" is not a decimal number');
    expect(() => percentage(new Decimal(Infinity))).toThrow('percent: Infinity is not a finite decimal');
  });
});

describe('minorUnitsToUsdString', () => {
  it.each([
    [123456n, '1234.56'],
    [5n, '0.05'],
    [-5n, '-0.05'],
    [0n, '0.00'],
    ['900719925474099312', '9007199254740993.12'], // beyond 2^53: no JS number on the way
  ])('%s cents -> %s', (minor, expected) => {
    expect(minorUnitsToUsdString(minor)).toBe(expected);
  });
});
