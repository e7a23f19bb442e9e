import { Controller, Headers, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { StripeWebhookService } from '@tokenmeter/invoicing';
import { WebhookSignatureError } from '@tokenmeter/stripe';
import { ApiError } from '../common/api-error';
import { Public } from '../auth/principal';
import { ApiAnswer, ERROR_SCHEMA } from '../common/openapi';

const WebhookAnswerSchema = z
  .object({
    received: z.literal(true),
    outcome: z
      .enum(['applied', 'duplicate', 'ignored'])
      .describe('applied: the invoice moved; duplicate: this event id was handled before; ignored: an event type or invoice this does not act on'),
  })
  .strict();

/**
 * Stripe -> us. The signature covers the exact bytes Stripe sent, so it is checked against
 * req.rawBody (kept by the JSON body parser, see app.ts), never a re-serialised req.body.
 */
@ApiTags('webhooks')
@Controller('webhooks')
export class StripeWebhookController {
  constructor(@Inject(StripeWebhookService) private readonly webhooks: StripeWebhookService) {}

  @Post('stripe')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Stripe webhook: invoice.paid, invoice.voided, invoice.marked_uncollectible move the invoice; other types are ignored',
  })
  @ApiHeader({ name: 'stripe-signature', required: true, description: 'Checked against STRIPE_WEBHOOK_SECRET' })
  @ApiBody({ description: 'A Stripe Event object, exactly as Stripe sent it', schema: { type: 'object' } })
  @ApiAnswer(WebhookAnswerSchema, 200, 'Acknowledged (also for a redelivered event id, handled once)')
  @ApiResponse({ status: 400, description: 'Missing or invalid Stripe-Signature (invalid_signature), or no JSON body', schema: ERROR_SCHEMA })
  async receive(@Req() req: Request & { rawBody?: Buffer }, @Headers('stripe-signature') signature?: string): Promise<z.input<typeof WebhookAnswerSchema>> {
    if (!req.rawBody) throw new ApiError(400, 'invalid_payload', 'expected a JSON body');
    try {
      const result = await this.webhooks.handle(req.rawBody, signature);
      return { received: true, outcome: result.outcome };
    } catch (err) {
      if (err instanceof WebhookSignatureError) throw new ApiError(400, 'invalid_signature', `Stripe signature check failed: ${err.message}`);
      throw err;
    }
  }
}
