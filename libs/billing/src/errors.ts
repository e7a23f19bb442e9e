/**
 * Domain errors: plain classes with a stable `code`, no HTTP or transport knowledge.
 * The API maps them to responses; the ingestor maps them to retry, park or dead-letter.
 * Expected bad input at the edges (a malformed usage event) is not an error at all:
 * `parseUsageEvent` returns a typed Rejection instead of throwing.
 */
export type DomainErrorCode = 'not_found' | 'validation' | 'conflict';

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
    // Subclasses report their own class name in logs and stack traces.
    this.name = new.target.name;
  }
}

export class NotFoundError extends DomainError {
  constructor(
    /** What was looked up, e.g. 'price_version' or 'account'. */
    readonly entity: string,
    readonly key: string,
  ) {
    super('not_found', `${entity} ${key} not found`);
  }
}

export class ValidationError extends DomainError {
  constructor(
    /** The offending field, named as the caller sent it (e.g. 'inputPerMTok', 'usage.prompt_tokens'). */
    readonly field: string,
    message: string,
  ) {
    super('validation', `${field}: ${message}`);
  }
}

export class ConflictError extends DomainError {
  constructor(message: string) {
    super('conflict', message);
  }
}
