import type { Response } from 'express';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EVENT_EXPORT_COLUMNS, type EventExportRow, type EventExportStream } from '@tokenmeter/db';

export type ExportFormat = 'csv' | 'ndjson';

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, with quotes doubled.
 * Values are written exactly as stored; no spreadsheet-formula neutralising (a leading "=" stays),
 * because an audit export must round-trip byte for byte. Open it as text in spreadsheet tools.
 */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function cell(value: EventExportRow[keyof EventExportRow]): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  // flags: ';'-joined inside one field (flag names never contain ';').
  if (Array.isArray(value)) return value.join(';');
  return String(value);
}

export function csvHeader(): string {
  return `${EVENT_EXPORT_COLUMNS.join(',')}\r\n`;
}

export function csvLine(row: EventExportRow): string {
  return `${EVENT_EXPORT_COLUMNS.map((c) => csvField(cell(row[c]))).join(',')}\r\n`;
}

export function ndjsonLine(row: EventExportRow): string {
  const out: Record<string, unknown> = {};
  for (const c of EVENT_EXPORT_COLUMNS) {
    const v = row[c];
    out[c] = v instanceof Date ? v.toISOString() : c === 'api_key_id' && v === '' ? null : v;
  }
  return `${JSON.stringify(out)}\n`;
}

/**
 * Rows (object mode) in, text out. Lines are coalesced into ~64 KiB chunks so a million rows are
 * not a million socket writes; pipeline() carries backpressure from the socket back to the cursor.
 */
export function exportEncoder(format: ExportFormat): Transform {
  const line = format === 'csv' ? csvLine : ndjsonLine;
  let buffered = format === 'csv' ? csvHeader() : '';
  return new Transform({
    writableObjectMode: true,
    readableHighWaterMark: 64 * 1024,
    transform(row: EventExportRow, _enc: BufferEncoding, done: TransformCallback) {
      buffered += line(row);
      if (buffered.length >= 64 * 1024) {
        const chunk = buffered;
        buffered = '';
        done(null, chunk);
        return;
      }
      done();
    },
    flush(done: TransformCallback) {
      done(null, buffered.length > 0 ? buffered : undefined);
    },
  });
}

/**
 * Sends an export (GET /admin/events/export and the dashboard's events.csv / events.ndjson).
 * Once the first byte is sent the status is 200; a failure after that truncates the body (no
 * final chunk), which HTTP clients report as an incomplete response, never as a complete export.
 */
export async function sendEventExport(stream: EventExportStream, format: ExportFormat, res: Response): Promise<void> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  res.status(200);
  res.setHeader('Content-Type', EXPORT_CONTENT_TYPES[format]);
  res.setHeader('Content-Disposition', `attachment; filename="tokenmeter-events-${stamp}.${format}"`);
  res.setHeader('Cache-Control', 'no-store');
  try {
    await pipeline(stream.rows, exportEncoder(format), res);
  } catch {
    // Client went away or the query failed mid-stream: pipeline() has destroyed every stream,
    // the cursor's connection has been discarded, and the client sees a truncated response.
    stream.release();
  }
}
