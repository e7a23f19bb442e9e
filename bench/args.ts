/** `--name N` from the command line, or `fallback`; anything but a positive number is refused. */
export function numberArg(name: string, fallback: number, argv: readonly string[] = process.argv): number {
  const i = argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(argv[i + 1]) : fallback;
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

/** `--name N` as a whole number from 1 to `max`, or `fallback`. */
export function integerArg(name: string, fallback: number, max: number, argv: readonly string[] = process.argv): number {
  const value = numberArg(name, fallback, argv);
  if (!Number.isInteger(value) || value > max) throw new Error(`--${name} must be a whole number from 1 to ${max}`);
  return value;
}

/**
 * Refuses options other than `--<allowed> <value>` (and stray positionals): a mistyped
 * `--event 500` would otherwise run silently with the default.
 */
export function refuseUnknownArgs(allowed: readonly string[], args: readonly string[] = process.argv.slice(2)): void {
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined;
    if (name === undefined || !allowed.includes(name)) {
      throw new Error(`unknown argument ${args[i]} (expected ${allowed.map((a) => `--${a} N`).join(', ')})`);
    }
  }
}
