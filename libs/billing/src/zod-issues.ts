import type { ZodIssue } from 'zod';

const MAX_ISSUES_IN_REASON = 5;

/** "an object", "a string", ... so reasons read as sentences. */
function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function quoteKey(key: string): string {
  return JSON.stringify(key.length > 64 ? key.slice(0, 64) + '...' : key);
}

function describeIssue(issue: ZodIssue, prefix: string): string {
  const path = [prefix, ...issue.path].filter((part) => part !== '').join('.');
  switch (issue.code) {
    case 'invalid_type':
      if (issue.received === 'undefined') return `${path} is required`;
      return `${path} must be ${withArticle(issue.expected)} (got ${issue.received})`;
    case 'unrecognized_keys': {
      const keys = issue.keys.slice(0, MAX_ISSUES_IN_REASON).map(quoteKey).join(', ');
      const more = issue.keys.length > MAX_ISSUES_IN_REASON ? ` and ${issue.keys.length - MAX_ISSUES_IN_REASON} more` : '';
      return path === ''
        ? `unknown top-level field(s) ${keys}${more}: the contract is closed; new fields need a new topic version`
        : `${path} has unknown field(s) ${keys}${more}`;
    }
    default:
      // Schemas in this library give every refinement a message that reads after the field name.
      return `${path} ${issue.message}`;
  }
}

/**
 * One human-readable reason naming each offending field, e.g.
 * "event_id is required; model must be a string (got number)".
 * `prefix` is prepended to every path ('usage' when validating the usage object on its own).
 */
export function describeIssues(issues: readonly ZodIssue[], prefix = ''): string {
  const parts = issues.slice(0, MAX_ISSUES_IN_REASON).map((issue) => describeIssue(issue, prefix));
  if (issues.length > MAX_ISSUES_IN_REASON) parts.push(`and ${issues.length - MAX_ISSUES_IN_REASON} more problem(s)`);
  return parts.join('; ');
}
