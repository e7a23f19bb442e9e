import { z } from 'zod';
import { type ApiKeyJson, apiKeyJson, ROLES } from '@tokenmeter/auth';
import { dateTime, pageOf, type Same } from '../common/response-fields';

export { apiKeyJson };
export type { ApiKeyJson };

/** A key as the API shows it (and as the audit log records it): never its secret or hash. */
export const ApiKeySchema = z
  .object({
    id: z.string(),
    prefix: z.string().describe('Identifies the key in lists, logs and the audit log, e.g. tm_live_Xa81kPq0 (never enough to use it)'),
    role: z.enum(ROLES),
    account_id: z.string().nullable().describe('The account an account key reads; null for admin and auditor keys'),
    name: z.string().nullable(),
    created_by_key_id: z.string().nullable().describe('null: created by the CLI or the start-up bootstrap'),
    created_at: dateTime,
    revoked_at: dateTime.nullable(),
    last_used_at: dateTime.nullable().describe('Updated at most once a minute'),
  })
  .strict();

/** The builder lives in @tokenmeter/auth (the audit log records the same shape); this keeps it and the documented schema equal. */
const builderMatchesSchema: Same<ApiKeyJson, z.input<typeof ApiKeySchema>> = true;
void builderMatchesSchema;

/** POST /admin/api-keys: the key itself, shown this once (only its sha256 is stored). */
export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().describe('The API key itself, answered exactly once: store it now'),
}).strict();

export const ApiKeyPageSchema = pageOf(ApiKeySchema);
