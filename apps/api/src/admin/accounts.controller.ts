import { Controller, Get, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { cursor, encodeCursor, freeText, identifier, idFilter, pageLimit, ValidBody, ValidParam, ValidQuery, whenValid } from '../common/validation';
import { AccountPageSchema, AccountSchema, accountJson, type AccountPageJson } from './admin-json';
import { AccountsService } from './accounts.service';

const name = freeText(200);
const email = z.string({ invalid_type_error: 'must be a string' }).email('must be an email address').max(320);

const createBody = z.object({ id: identifier, name, email: email.nullish() }).strict();
const spendFailMode = z.enum(['open', 'closed'], { errorMap: () => ({ message: 'must be "open" or "closed"' }) });
const patchBody = whenValid(
  z.object({ name: name.optional(), email: email.nullable().optional(), spend_fail_mode: spendFailMode.optional() }).strict(),
  (b, ctx) => {
    if (b.name === undefined && b.email === undefined && b.spend_fail_mode === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give name, email and/or spend_fail_mode', path: ['body'] });
    }
  },
);
const listQuery = z.object({ limit: pageLimit, cursor: cursor(1) });

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Post()
  @ApiOperation({ summary: 'Create an account', description: '409 if the id exists (usage for an unknown account creates a bare one: PATCH it instead).' })
  @ApiAnswer(AccountSchema, 201, 'Created')
  @errorResponses(...ADMIN_ERRORS, 409)
  async create(@ValidBody(createBody) input: z.output<typeof createBody>, @CurrentActor() actor: Actor) {
    return accountJson(await this.accounts.createAccount({ id: input.id, name: input.name, email: input.email ?? null }, actor));
  }

  @Get()
  @ApiOperation({ summary: 'List accounts by id (cursor pagination)' })
  @ApiAnswer(AccountPageSchema)
  @errorResponses(...ADMIN_ERRORS)
  async list(@ValidQuery(listQuery) q: z.output<typeof listQuery>): Promise<AccountPageJson> {
    const accounts = await this.accounts.listAccounts({ afterId: q.cursor?.[0], limit: q.limit });
    const last = accounts.length === q.limit ? accounts[accounts.length - 1] : undefined;
    return { data: accounts.map(accountJson), next_cursor: last ? encodeCursor([last.id]) : null };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One account' })
  @ApiAnswer(AccountSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async get(@ValidParam('id', idFilter) id: string) {
    return accountJson(await this.accounts.getAccountOrFail(id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change an account name and/or email (email null clears it)' })
  @ApiAnswer(AccountSchema)
  @errorResponses(...ADMIN_ERRORS, 404)
  async update(@ValidParam('id', idFilter) id: string, @ValidBody(patchBody) changes: z.output<typeof patchBody>, @CurrentActor() actor: Actor) {
    return accountJson(await this.accounts.updateAccount(id, { name: changes.name, email: changes.email, spendFailMode: changes.spend_fail_mode }, actor));
  }
}

// The dashboard's accounts page validates with this very schema.
export { listQuery as accountListQuery };
