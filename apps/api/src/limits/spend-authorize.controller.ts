import { Controller, HttpCode, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { SpendAuthorizer } from '@tokenmeter/limits';
import { Public } from '../auth/principal';
import { ApiAnswer, errorResponses } from '../common/openapi';
import { ValidBody } from '../common/validation';
import { IngestTokenGuard } from '../ingest/ingest-token.guard';
import { answerAuthorize, AuthorizeAnswerSchema, authorizeBody, type AuthorizeBody, type AuthorizeHttpAnswer } from './authorize-answer';

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
      'The same route, with the same answers, is also served on AUTHORIZE_PORT by a lean listener without this API\'s middleware: the port for gateways at high rates (docs/limits.md, "The lean port").',
    ].join(' '),
  })
  @ApiAnswer(AuthorizeAnswerSchema, 200, 'Allowed')
  @ApiAnswer(AuthorizeAnswerSchema, 402, 'Denied: a hard budget is spent (reason "budget_exceeded"), or a prepaid-only account\'s credits are (reason "credits_exhausted")')
  @ApiAnswer(AuthorizeAnswerSchema, 429, 'Denied for now: holds of requests in flight fill the room (reason "holds_in_flight"); see Retry-After')
  @errorResponses(400, 401, 503)
  authorize(@ValidBody(authorizeBody) b: AuthorizeBody, @Res({ passthrough: true }) res: Response): AuthorizeHttpAnswer['json'] {
    const answer = answerAuthorize(this.authorizer, b);
    res.status(answer.status);
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
    return answer.json;
  }
}
