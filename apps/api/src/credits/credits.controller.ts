import { Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { CREDIT_CATEGORIES } from '@tokenmeter/billing';
import { CreditsService } from '@tokenmeter/limits';
import { CurrentPrincipal, Roles, scopeAccount, type Principal } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { encodeCursor, idCursor, idFilter, instant, pageLimit, textFilter, ValidBody, ValidParam, ValidQuery } from '../common/validation';
import {
  CreditBalancesSchema,
  creditBalancesJson,
  CreditEntryPageSchema,
  creditEntryJson,
  CreditGrantSchema,
  creditGrantJson,
  type CreditEntryPageJson,
} from './credits-json';

// Money travels as strings: a positive amount with at most 22 decimals (what exact cost units hold).
const amountUsd = z
  .string({ invalid_type_error: 'must be a decimal string such as "100.00" (JSON numbers are refused for money)' })
  .regex(/^\d{1,10}(\.\d{1,22})?$/, 'must be a decimal string with at most 10 integer digits and 22 decimals, e.g. "100.00"')
  .refine((s) => /[1-9]/.test(s), 'must be greater than 0')
  .describe('USD, a decimal STRING such as "100.00" (JSON numbers are refused)');
const category = z.enum(CREDIT_CATEGORIES, { errorMap: () => ({ message: 'must be "paid" or "promotional"' }) });
const priority = z
  .number({ invalid_type_error: 'must be a whole number' })
  .int('must be a whole number')
  .min(-1_000_000, 'must be at least -1000000')
  .max(1_000_000, 'must be at most 1000000');

export const newCreditGrantBody = z
  .object({
    amount_usd: amountUsd,
    category,
    effective_at: instant.describe('From this instant on, usage is covered (inclusive)'),
    expires_at: instant.nullish().describe('Usage at or after this instant is not covered (exclusive); absent: never expires'),
    priority: priority.optional().describe('Lower burns first; default 0'),
    models: z.array(textFilter(128)).max(100, 'at most 100 models').optional().describe('The models it pays for; absent or empty: every model'),
    idempotency_key: textFilter(200).describe('The same key with the same body returns the same grant (200); with another body: 409'),
  })
  .strict();
// Not strict: like the usage reads, other query parameters are ignored (an account key naming another account is a 404, not a 400).
const accountQuery = z.object({ account_id: idFilter.optional().describe('Admin and auditor keys only (required for them): the account to read') });
const entriesQuery = z
  .object({
    account_id: idFilter.optional().describe('Admin and auditor keys only (required for them): the account to read'),
    limit: pageLimit,
    cursor: idCursor,
  });

/** Credit grants, by admins (docs/credits.md): created with their ledger entry and voided, both audited. */
@ApiTags('admin: credits')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin')
export class AdminCreditsController {
  constructor(private readonly credits: CreditsService) {}

  @Post('accounts/:id/credit-grants')
  @ApiOperation({
    summary: 'Grant credits to an account (paid or promotional)',
    description: [
      'Writes the grant and its "grant" ledger entry (+amount_usd) in one transaction, audited. A grant never changes afterwards: void it to take back what is left.',
      '201 with the grant; the same idempotency_key with the same terms answers 201 with the same grant again (header Idempotent-Replayed: true) and writes nothing; with other terms 409.',
      'Amounts are decimal strings.',
    ].join(' '),
  })
  @ApiAnswer(CreditGrantSchema, 201, 'Created, or created before with this idempotency_key and these terms (Idempotent-Replayed: true): the same grant')
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  async create(
    @ValidParam('id', idFilter) accountId: string,
    @ValidBody(newCreditGrantBody) b: z.output<typeof newCreditGrantBody>,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) res: Response,
  ) {
    const { grant, created } = await this.credits.createGrant(
      {
        accountId,
        amountUsd: b.amount_usd,
        category: b.category,
        effectiveAt: b.effective_at,
        expiresAt: b.expires_at ?? null,
        priority: b.priority ?? 0,
        models: b.models ?? [],
        idempotencyKey: b.idempotency_key,
      },
      actor,
    );
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    return creditGrantJson(grant);
  }

  @Get('accounts/:id/credit-grants')
  @ApiOperation({ summary: 'An account’s grants with their ledger balance, pending burn and available balance, and the totals' })
  @ApiAnswer(CreditBalancesSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async list(@ValidParam('id', idFilter) accountId: string) {
    return creditBalancesJson(await this.credits.balances(accountId));
  }

  @Get('credit-grants/:id')
  @ApiOperation({ summary: 'One grant with its balances' })
  @ApiAnswer(CreditGrantSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async get(@ValidParam('id', idFilter) id: string) {
    return creditGrantJson(await this.credits.getGrant(id));
  }

  @Post('credit-grants/:id/void')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Void a grant: take back what is left of it (audited)',
    description:
      'Writes a "void" entry of the available balance (ledger balance minus what usage not invoiced yet draws on it) and marks the grant voided. The drawn part stays, so that usage remains covered on its invoice. 409 if already voided.',
  })
  @ApiAnswer(CreditGrantSchema)
  @errorResponses(...ADMIN_ERRORS, 404, 409)
  async void(@ValidParam('id', idFilter) id: string, @CurrentActor() actor: Actor) {
    return creditGrantJson(await this.credits.voidGrant(id, actor));
  }
}

/** An account’s credits: grants with what is left, and the ledger. */
@ApiTags('credits')
@ApiBearerAuth()
@Roles('account', 'admin')
@Controller('v1/credits')
export class CreditsController {
  constructor(private readonly credits: CreditsService) {}

  @Get()
  @ApiOperation({
    summary: 'The account’s credit grants, each with its remaining balance, and the totals',
    description: 'Computed on read from the ledger and the usage stored so far (the same allocation the invoice applies), never from a periodic job.',
  })
  @ApiAnswer(CreditBalancesSchema)
  @errorResponses(400, 401, 403, 404)
  async get(@CurrentPrincipal() principal: Principal, @ValidQuery(accountQuery) q: z.output<typeof accountQuery>) {
    return creditBalancesJson(await this.credits.balances(scopeAccount(principal, q.account_id)));
  }

  @Get('entries')
  @ApiOperation({ summary: 'The account’s credit ledger entries, newest first (cursor pagination)' })
  @ApiAnswer(CreditEntryPageSchema)
  @errorResponses(400, 401, 403, 404)
  async entries(@CurrentPrincipal() principal: Principal, @ValidQuery(entriesQuery) q: z.output<typeof entriesQuery>): Promise<CreditEntryPageJson> {
    const entries = await this.credits.listEntries(scopeAccount(principal, q.account_id), { beforeId: q.cursor, limit: q.limit });
    const last = entries.length === q.limit ? entries[entries.length - 1] : undefined;
    return { data: entries.map(creditEntryJson), next_cursor: last ? encodeCursor([last.id]) : null };
  }
}
