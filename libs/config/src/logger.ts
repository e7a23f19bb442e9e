import pino, { type Logger } from 'pino';
import type { TokenmeterConfig } from './config';

export type { Logger };

/**
 * Structured JSON logs. Anything that looks like a credential is redacted at the source,
 * so a careless `log.info({ headers })` cannot leak a bearer token or a key. The level comes from
 * the validated configuration (`config.logLevel`, LOG_LEVEL), never from the environment directly.
 */
export function createLogger(name: string, level: TokenmeterConfig['logLevel']): Logger {
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
