import { dueCreditAlerts, parseCreditLowThresholds } from './credit-alerts';
import { parseCostUnits } from './cost-units';

const u = (usd: string) => parseCostUnits(usd, 'usd');
const due = (funded: string, available: string, thresholds = ['20', '5']) =>
  dueCreditAlerts(u(funded), u(available), thresholds).map((a) => `${a.kind}:${a.thresholdPct}`);

describe('credit alerts: low at or below each threshold of the funded amount, exhausted at 0', () => {
  it('is due exactly at the threshold, not one unit above it', () => {
    expect(due('10', '2.0000000000000000000001')).toEqual([]);
    expect(due('10', '2')).toEqual(['low:20']);
    expect(due('10', '0.5000000000000000000001')).toEqual(['low:20']);
    expect(due('10', '0.5')).toEqual(['low:20', 'low:5']);
    expect(due('10', '0.0000000000000000000001')).toEqual(['low:20', 'low:5']);
    expect(due('10', '0')).toEqual(['low:20', 'low:5', 'exhausted:0']);
  });

  it('is due for every threshold passed at once, and never without credits funded', () => {
    expect(due('0.03', '0')).toEqual(['low:20', 'low:5', 'exhausted:0']);
    expect(due('0', '0')).toEqual([]);
    expect(due('10', '0', [])).toEqual(['exhausted:0']);
  });

  it('compares fractional thresholds exactly', () => {
    expect(due('3', '0.075', ['2.5'])).toEqual(['low:2.5']);
    expect(due('3', '0.0750000000000000000001', ['2.5'])).toEqual([]);
  });

  it('parses the configured thresholds: distinct, highest first, canonical text', () => {
    expect(parseCreditLowThresholds('20,5')).toEqual(['20', '5']);
    expect(parseCreditLowThresholds(' 5, 20.0 ,20, 0.0001')).toEqual(['20', '5', '0.0001']);
    expect(parseCreditLowThresholds('')).toEqual([]);
    for (const bad of ['0', '100', '-5', '20%', '1.00001', 'abc']) expect(() => parseCreditLowThresholds(bad)).toThrow();
  });
});
