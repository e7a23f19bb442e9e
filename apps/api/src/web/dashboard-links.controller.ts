import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/principal';
import { type Actor, CurrentActor } from '../common/actor';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { dateTime } from '../common/response-fields';
import { idFilter, ValidParam } from '../common/validation';
import { WebSessionsService } from './web-sessions.service';

export const DashboardLinkSchema = z
  .object({
    url: z.string().describe('Opens the account dashboard signed in as that account, once'),
    expires_at: dateTime,
  })
  .strict();

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/accounts')
export class DashboardLinksController {
  constructor(private readonly sessions: WebSessionsService) {}

  @Post(':id/dashboard-links')
  @HttpCode(201)
  @ApiOperation({
    summary: 'A one-time link to the account dashboard (a customer portal link)',
    description:
      'Opening the URL once signs that browser in as the account (an HttpOnly session cookie); the link cannot be used again, nor after expires_at (DASHBOARD_LINK_MINUTES, default 60). Audited as dashboard_link.create; the token itself is stored only as its sha256.',
  })
  @ApiAnswer(DashboardLinkSchema, 201)
  @errorResponses(...ADMIN_ERRORS, 404)
  async create(@ValidParam('id', idFilter) accountId: string, @CurrentActor() actor: Actor): Promise<z.input<typeof DashboardLinkSchema>> {
    const link = await this.sessions.createDashboardLink(accountId, actor);
    return { url: link.url, expires_at: link.expiresAt.toISOString() };
  }
}
