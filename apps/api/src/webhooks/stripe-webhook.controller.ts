import { Controller, Headers, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { Request } from 'express';
import { StripeWebhookService } from '@tokenmeter/invoicing';
import { WebhookSignatureError } from '@tokenmeter/stripe';
import { ApiError } from '../common/api-error';
import { Public } from '../auth/principal';

/**
 * Stripe -> us. The signature covers the exact bytes Stripe sent, so it is checked against
 * req.rawBody (kept by the JSON body parser, see app.ts), never a re-serialised req.body.
 */
@Controller('webhooks')
export class StripeWebhookController {
  constructor(@Inject(StripeWebhookService) private readonly webhooks: StripeWebhookService) {}

  @Post('stripe')
  @Public()
  @HttpCode(200)
  @ApiExcludeEndpoint()
  async receive(@Req() req: Request & { rawBody?: Buffer }, @Headers('stripe-signature') signature?: string) {
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
