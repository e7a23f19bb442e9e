import { Controller, HttpCode, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { BUDGET_WINDOWS, costUnitsToString, MAX_TOKEN_COUNT } from '@tokenmeter/billing';
import { SpendAuthorizer, SpendStateUnavailableError, type AuthorizeAnswer } from '@tokenmeter/limits';
import { Public } from '../auth/principal';
import { ApiError } from '../common/api-error';
import { ApiAnswer, errorResponses } from '../common/openapi';
import { dateTime, usdAmount } from '../common/response-fields';
import { identifier, ValidBody } from '../common/validation';
import { IngestTokenGuard } from '../ingest/ingest-token.guard';

const tokenCount = z
  .number({ invalid_type_error: 'must be a whole number of tokens' })
  .int('must be a whole number of tokens')
  .nonnegative('must not be negative')
  .lt(MAX_TOKEN_COUNT, `must be below ${MAX_TOKEN_COUNT}`);

const authorizeBody = z
  .object({
    account_id: identifier,
    api_key_id: identifier.nullish().describe("The gateway's key id for the request, as in its usage events"),
    model: identifier,
    request_id: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').describe('The request_id its usage event will carry'),
    estimated_input_tokens: tokenCount.optional().describe('Prompt tokens, as the gateway counts them (0 if absent)'),
    max_output_tokens: tokenCount.optional().describe("The request's max_output_tokens; without it the model's cap is held"),
  })
  .strict();

const LimitSourceSchema = z
  .object({
    budget_id: z.string(),
    scope: z.enum(['account', 'api_key', 'model', 'api_key+model']).describe('What the budget covers: the whole account, one key, one model, or one key on one model'),
    window: z.enum(BUDGET_WINDOWS),
    window_start: dateTime,
    resets_at: dateTime.nullable().describe('When the window ends and spend starts again from 0; null for a total budget'),
    limit_usd: usdAmount,
    spend_usd: usdAmount.describe('Committed spend in the window (holds not included)'),
  })
  .strict();

const CreditsLimitSourceSchema = z
  .object({
    type: z.literal('credits').describe('A prepaid-only account\'s credits decided (docs/credits.md)'),
    available_usd: usdAmount.describe('What the account\'s grants covering this model have left now (holds not included)'),
    held_usd: usdAmount.describe('Held by the account\'s requests in flight'),
  })
  .strict();

const AuthorizeAnswerSchema = z
  .object({
    decision: z.enum(['allow', 'deny']),
    reason: z
      .enum(['budget_exceeded', 'holds_in_flight', 'soft_limit_exceeded', 'credits_exhausted'])
      .optional()
      .describe(
        'budget_exceeded (402), credits_exhausted (402, a prepaid-only account), holds_in_flight (429: retry after Retry-After), soft_limit_exceeded (allowed, a soft budget is past its limit)',
      ),
    limit_source: z
      .union([LimitSourceSchema, CreditsLimitSourceSchema])
      .optional()
      .describe('The budget that decided (or, when allowed, the soft budget past its limit), or {type: "credits"} for a prepaid-only account\'s credits'),
    remaining_usd: usdAmount.nullable().describe('Least room left over the hard budgets that apply, after holds (this request\'s included when allowed); null when none applies'),
    hold_usd: usdAmount.describe('What this request holds until its usage event is stored: input plus maximum output at the price in force; "0" when denied'),
    as_of: dateTime.describe('Every change committed before this instant is reflected in the answer (docs/limits.md, "Freshness")'),
    on_unreachable: z.enum(['allow', 'deny']).describe("The account's fail mode: what to do when Tokenmeter cannot be reached"),
  })
  .strict();
type AuthorizeAnswerJson = z.input<typeof AuthorizeAnswerSchema>;

function answerJson(a: AuthorizeAnswer): AuthorizeAnswerJson {
  const json: AuthorizeAnswerJson = {
    decision: a.decision,
    remaining_usd: a.remainingUnits === null ? null : costUnitsToString(a.remainingUnits),
    hold_usd: costUnitsToString(a.holdUnits),
    as_of: a.asOf.toISOString(),
    on_unreachable: a.onUnreachable,
  };
  if (a.reason !== undefined) json.reason = a.reason;
  if (a.limitSource !== undefined && 'type' in a.limitSource) {
    json.limit_source = { type: 'credits', available_usd: costUnitsToString(a.limitSource.availableUnits), held_usd: costUnitsToString(a.limitSource.heldUnits) };
  } else if (a.limitSource !== undefined) {
    const s = a.limitSource;
    json.limit_source = {
      budget_id: s.budgetId,
      scope: s.scope,
      window: s.window,
      window_start: s.windowStart.toISOString(),
      resets_at: s.resetsAt?.toISOString() ?? null,
      limit_usd: costUnitsToString(s.limitUnits),
      spend_usd: costUnitsToString(s.spendUnits),
    };
  }
  return json;
}

@ApiTags('limits')
@ApiBearerAuth()
// The gateway authenticates with the ingest token, as for POST /v1/events, not with an API key.
@Public()
@Controller('v1/spend/authorize')
@UseGuards(IngestTokenGuard)
export class SpendAuthorizeController {
  constructor(private readonly authorizer: SpendAuthorizer) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({
    summary: 'May this request run? (the gateway, before calling the model)',
    description: [
      'Answered from memory: no database round trip. Allowed requests hold their estimated cost (input plus max_output_tokens at the price in force) until their usage event is stored.',
      '402 budget_exceeded: a hard budget has no room for the request (limit_source names it, resets_at says when it resets).',
      '402 credits_exhausted: a prepaid-only account\'s credits covering the model cannot pay for the request (limit_source {type: "credits"}).',
      '429 holds_in_flight with Retry-After: only requests in flight fill the room; retry when they settle.',
      'Unknown accounts and accounts without budgets are allowed. The same request_id asked again gets the same hold.',
    ].join(' '),
  })
  @ApiAnswer(AuthorizeAnswerSchema, 200, 'Allowed')
  @ApiAnswer(AuthorizeAnswerSchema, 402, 'Denied: a hard budget is spent (reason "budget_exceeded"), or a prepaid-only account\'s credits are (reason "credits_exhausted")')
  @ApiAnswer(AuthorizeAnswerSchema, 429, 'Denied for now: holds of requests in flight fill the room (reason "holds_in_flight"); see Retry-After')
  @errorResponses(400, 401, 503)
  authorize(@ValidBody(authorizeBody) b: z.output<typeof authorizeBody>, @Res({ passthrough: true }) res: Response): AuthorizeAnswerJson {
    let answer: AuthorizeAnswer;
    try {
      answer = this.authorizer.authorize({
        accountId: b.account_id,
        apiKeyId: b.api_key_id ?? null,
        model: b.model,
        requestId: b.request_id,
        estimatedInputTokens: b.estimated_input_tokens ?? 0,
        maxOutputTokens: b.max_output_tokens ?? null,
      });
    } catch (err) {
      if (err instanceof SpendStateUnavailableError) {
        throw new ApiError(503, 'spend_state_unavailable', 'the spend state is not loaded yet; apply the account\'s fail mode');
      }
      throw err;
    }
    res.status(answer.status);
    if (answer.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(answer.retryAfterSeconds));
    return answerJson(answer);
  }
}
