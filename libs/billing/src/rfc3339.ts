// RFC 3339 date-time: full date, 'T', full time with seconds, optional fraction, and a
// mandatory offset ('Z' or ±hh:mm). A timestamp without an offset is ambiguous (whose local
// time?), so it is rejected rather than guessed as UTC.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1];
}

/**
 * Epoch milliseconds, or null if `text` is not a valid RFC 3339 date-time with offset.
 * Digits beyond milliseconds are truncated (the DB stores timestamptz(3)).
 * Calendar-invalid dates (2025-02-30) and leap seconds (:60, which JS Dates cannot hold) are rejected.
 */
export function parseRfc3339Ms(text: string): number | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const year = +m[1];
  const month = +m[2];
  const day = +m[3];
  const hour = +m[4];
  const minute = +m[5];
  const second = +m[6];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const millis = m[7] === undefined ? 0 : +(m[7] + '00').slice(0, 3);
  let offsetMinutes = 0;
  if (m[8] !== undefined) {
    const offsetHours = +m[9];
    const offsetMins = +m[10];
    if (offsetHours > 23 || offsetMins > 59) return null;
    offsetMinutes = (m[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  let ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (year < 100) {
    // Date.UTC maps years 0-99 to 1900-1999.
    const date = new Date(ms);
    date.setUTCFullYear(year);
    ms = date.getTime();
  }
  return ms - offsetMinutes * 60_000;
}
