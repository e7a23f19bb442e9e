import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Roles } from '../auth/principal';
import { ADMIN_ERRORS, ApiAnswer, errorResponses } from '../common/openapi';
import { encodeCursor, idCursor, idFilter, pageLimit, ValidQuery } from '../common/validation';
import { WebhooksAdminService } from './webhooks-admin.service';
import { BudgetAlertPageSchema, budgetAlertJson } from './webhooks-json';

const query = z.object({ account_id: idFilter.optional(), limit: pageLimit, cursor: idCursor });

@ApiTags('admin: webhooks')
@ApiBearerAuth()
@Roles('admin')
@Controller('admin/alerts')
export class AlertsAdminController {
  constructor(private readonly webhooks: WebhooksAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'Budget alerts, newest first',
    description: 'One per (budget, window, threshold, direction), recorded in the transaction that crossed it; published_at says when the notifier sent it.',
  })
  @ApiAnswer(BudgetAlertPageSchema)
  @errorResponses(...ADMIN_ERRORS)
  async list(@ValidQuery(query) q: z.output<typeof query>): Promise<z.input<typeof BudgetAlertPageSchema>> {
    const alerts = await this.webhooks.listAlerts({ accountId: q.account_id, beforeId: q.cursor, limit: q.limit });
    const last = alerts.length === q.limit ? alerts[alerts.length - 1] : undefined;
    return { data: alerts.map(budgetAlertJson), next_cursor: last ? encodeCursor([last.id]) : null };
  }
}
