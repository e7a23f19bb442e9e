import { Readable } from 'node:stream';
import type { EventExportRow } from '@tokenmeter/db';
import { csvField, exportEncoder } from './event-export';

const row = (overrides: Partial<EventExportRow> = {}): EventExportRow => ({
  event_id: 'evt_1',
  account_id: 'acct_1',
  api_key_id: '',
  model: 'gpt-4o',
  request_id: null,
  occurred_at: new Date('2026-11-15T10:30:00.000Z'),
  received_at: new Date('2026-11-15T10:30:01.000Z'),
  source: 'kafka',
  usage_format: 'openai',
  input_tokens: '1000',
  output_tokens: '500',
  cache_read_tokens: '0',
  cache_write_tokens: '0',
  reasoning_tokens: '0',
  price_version_id: '3',
  price_override_id: null,
  input_cost_usd: '0.0025',
  output_cost_usd: '0.005',
  cache_read_cost_usd: '0',
  cache_write_cost_usd: '0',
  cost_usd: '0.0075',
  flags: [],
  invoice_id: null,
  ...overrides,
});

async function encode(format: 'csv' | 'ndjson', rows: EventExportRow[]): Promise<string> {
  let out = '';
  for await (const chunk of Readable.from(rows).pipe(exportEncoder(format))) out += chunk;
  return out;
}

describe('event export encoding', () => {
  it('quotes fields holding commas, quotes or line breaks, doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField('=SUM(A1)')).toBe('=SUM(A1)');
  });

  it('writes a header and one CRLF-terminated line per row, nulls as empty fields', async () => {
    const csv = await encode('csv', [row({ request_id: 'req,"1"', flags: ['exceeds_context_window', 'exceeds_max_output'] })]);
    const lines = csv.split('\r\n');
    expect(lines[0]).toMatch(/^event_id,account_id,api_key_id,model,request_id,occurred_at,/);
    expect(lines[1]).toBe(
      'evt_1,acct_1,,gpt-4o,"req,""1""",2026-11-15T10:30:00.000Z,2026-11-15T10:30:01.000Z,kafka,openai,1000,500,0,0,0,3,,0.0025,0.005,0,0,0.0075,exceeds_context_window;exceeds_max_output,',
    );
    expect(lines[2]).toBe('');
  });

  it('writes only the header for no rows, and NDJSON with null for a missing API key', async () => {
    expect((await encode('csv', [])).split('\r\n')).toHaveLength(2);
    const nd = (await encode('ndjson', [row(), row({ event_id: 'evt_2' })])).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(nd).toHaveLength(2);
    expect(nd[0]).toMatchObject({ event_id: 'evt_1', api_key_id: null, occurred_at: '2026-11-15T10:30:00.000Z', cost_usd: '0.0075' });
  });
});
