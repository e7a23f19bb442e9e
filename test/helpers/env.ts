/**
 * Sets environment variables for a describe block and puts back what was there after it: for the
 * settings the app and the helpers read when they start (KAFKA_USAGE_TOPIC, TOKENMETER_ADMIN_KEY,
 * ...). Register it before the block's own beforeAll, so they see the values.
 */
export function useEnv(vars: Record<string, string>): void {
  const previous = new Map<string, string | undefined>();
  beforeAll(() => {
    for (const [name, value] of Object.entries(vars)) {
      previous.set(name, process.env[name]);
      process.env[name] = value;
    }
  });
  afterAll(() => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}
