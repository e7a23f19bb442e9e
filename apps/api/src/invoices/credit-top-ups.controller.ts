import { Controller, Inject, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { usd } from '@tokenmeter/billing';
import { CreditTopUpService, type TopUpResult } from '@tokenmeter/invoicing';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { dateTime } from '../common/response-fields';
import { idFilter, instant, textFilter, ValidBody, ValidParam, whenValid } from '../common/validation';

// Sold as one Stripe invoice item, so whole cents: a decimal string with at most 2 decimals.
const amountUsd = z
  .string({ invalid_type_error: 'must be a decimal string such as "100.00" (JSON numbers are refused for money)' })
  .regex(/^\d{1,10}(\.\d{1,2})?$/, 'must be a decimal string in whole cents with at most 10 integer digits, e.g. "100.00"')
  .refine((s) => /[1-9]/.test(s), 'must be greater than 0')
  .describe('USD in whole cents, a decimal STRING such as "100.00"');
const priority = z
  .number({ invalid_type_error: 'must be a whole number' })
  .int('must be a whole number')
  .min(-1_000_000, 'must be at least -1000000')
  .max(1_000_000, 'must be at most 1000000');

const topUpBody = whenValid(
  z
    .object({
      amount_usd: amountUsd,
      idempotency_key: textFilter(200).describe('The same key with the same body answers the same grant and Stripe invoice again; with another body 409'),
      effective_at: instant.optional().describe('Usage from this instant on may draw on it once paid (default: now)'),
      expires_at: instant.nullish().describe('Exclusive; absent: never expires'),
      priority: priority.optional().describe('Lower burns first; default 0'),
      models: z.array(textFilter(128)).max(100, 'at most 100 models').optional().describe('The models it pays for; absent or empty: every model'),
    })
    .strict(),
  (b, ctx) => {
    if (b.expires_at && b.effective_at && b.expires_at.getTime() <= b.effective_at.getTime()) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be after effective_at', path: ['expires_at'] });
    }
  },
);

export const CreditTopUpSchema = z
  .object({
    grant_id: z.string(),
    account_id: z.string(),
    amount_usd: z.string().regex(/^\d+\.\d{2}$/),
    category: z.literal('paid'),
    status: z.enum(['pending_payment', 'active', 'voided']).describe('pending_payment until Stripe reports the invoice paid'),
    effective_at: dateTime,
    expires_at: dateTime.nullable(),
    stripe_invoice_id: z.string(),
    stripe_invoice_status: z.string().nullable().describe('"open" once finalized (the customer can pay it)'),
    hosted_invoice_url: z.string().nullable().describe("Stripe's payment page for the customer"),
  })
  .strict();

/** Paid top-ups sold as their own Stripe invoice (docs/credits.md, "Paid top-ups"). */
@ApiTags('admin: credits')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/accounts/:id/credit-top-ups')
export class CreditTopUpsController {
  constructor(@Inject(CreditTopUpService) private readonly topUps: CreditTopUpService) {}

  @Post()
  @ApiOperation({
    summary: 'Sell prepaid credits on their own Stripe invoice; the grant becomes active when Stripe reports it paid',
    description: [
      'Creates a paid grant in pending_payment (no ledger entry yet) and a finalized Stripe invoice with one item for amount_usd, audited (credits.top_up).',
      "Stripe's invoice.paid webhook for that invoice activates the grant and writes its grant ledger entry, once; invoice.voided cancels a grant not paid yet.",
      '201 with the grant; the same idempotency_key with the same body answers 201 with the same grant again (header Idempotent-Replayed: true), resuming a push a crash interrupted; with another body 409.',
    ].join(' '),
  })
  @ApiAnswer(CreditTopUpSchema, 201, 'Created, or created before with this idempotency_key and body (Idempotent-Replayed: true): the same grant')
  @errorResponses(...ADMIN_ERRORS, 404, 409, 502)
  async create(
    @ValidParam('id', idFilter) accountId: string,
    @ValidBody(topUpBody) b: z.output<typeof topUpBody>,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) res: Response,
  ): Promise<z.input<typeof CreditTopUpSchema>> {
    const result = await this.topUps.create(
      accountId,
      {
        amountUsd: b.amount_usd,
        idempotencyKey: b.idempotency_key,
        effectiveAt: b.effective_at,
        expiresAt: b.expires_at ?? null,
        priority: b.priority,
        models: b.models,
      },
      actor,
    );
    if (!result.created) res.setHeader('Idempotent-Replayed', 'true');
    return topUpJson(result);
  }
}

export function topUpJson(r: TopUpResult): z.input<typeof CreditTopUpSchema> {
  return {
    grant_id: r.grant.id,
    account_id: r.grant.accountId,
    amount_usd: usd(r.grant.amountUsd).toFixed(2),
    category: 'paid',
    status: r.grant.status,
    effective_at: r.grant.effectiveAt.toISOString(),
    expires_at: r.grant.expiresAt?.toISOString() ?? null,
    stripe_invoice_id: r.grant.stripeInvoiceId!,
    stripe_invoice_status: r.stripeInvoice.status,
    hosted_invoice_url: r.stripeInvoice.hostedInvoiceUrl,
  };
}
