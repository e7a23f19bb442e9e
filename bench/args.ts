/** `--name N` from the command line, or `fallback`; anything but a positive number is refused. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/** `--name 1,8` from the command line, or `fallback`: a comma-separated list of positive integers. */
export function integerListArg(name: string, fallback: number[]): number[] {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const raw = process.argv[i + 1] ?? '';
  const values = raw.split(',').map((s) => Number(s.trim()));
  if (raw.trim() === '' || values.some((v) => !Number.isInteger(v) || v <= 0)) {
    throw new Error(`--${name} must be a comma-separated list of positive integers (e.g. 1,8)`);
  }
  return values;
}

/** `--name value` from the command line, or `fallback`; a value not matching `pattern` is refused. */
export function stringArg(name: string, fallback: string, pattern: RegExp): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? (process.argv[i + 1] ?? '') : fallback;
  if (!pattern.test(value)) throw new Error(`--${name} must match ${pattern}`);
  return value;
}
