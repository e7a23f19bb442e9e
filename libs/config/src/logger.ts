import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Anything that looks like a credential is redacted at the source,
 * so a careless `log.info({ headers })` cannot leak a bearer token or a key.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'headers.authorization',
        'req.headers.authorization',
        'key',
        '*.key',
        'secret',
        '*.secret',
        'password',
        '*.password',
        'token',
        '*.token',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
