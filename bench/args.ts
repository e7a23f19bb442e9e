/** `--name N` from the command line, or `fallback`; anything but a positive number is refused. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/** `--name VALUE` from the command line, or `fallback`; the value must be a plain SQL identifier. */
export function identifierArg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined || !/^[a-z_][a-z0-9_]*$/.test(value)) throw new Error(`--${name} must be a lower-case SQL identifier`);
  return value;
}
