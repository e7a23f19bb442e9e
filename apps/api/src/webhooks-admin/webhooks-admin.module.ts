import { Module } from '@nestjs/common';
import { AlertsAdminController } from './alerts-admin.controller';
import { WebhookDeliveriesController, WebhookEndpointsController } from './webhooks-admin.controller';
import { WebhooksAdminService } from './webhooks-admin.service';

/** Admin routes for webhook endpoints, their delivery log and resends, and budget alerts (docs/limits.md). */
@Module({
  controllers: [WebhookEndpointsController, WebhookDeliveriesController, AlertsAdminController],
  providers: [WebhooksAdminService],
})
export class WebhooksAdminModule {}
