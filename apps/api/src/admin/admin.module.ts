import { Module } from '@nestjs/common';
import { IngestModule } from '@tokenmeter/ingest';
import { ModelsService } from '@tokenmeter/prices';
import { AccountsController } from './accounts.controller';
import { AccountsService } from './accounts.service';
import { AdminRepriceService } from './admin-reprice.service';
import { AuditLogController } from './audit-log.controller';
import { AuditLogService } from './audit-log.service';
import { ModelsController } from './models.controller';
import { PriceImportController } from './price-import.controller';
import { PriceOverridesController } from './price-overrides.controller';
import { PriceOverridesService } from './price-overrides.service';
import { RepriceController } from './reprice.controller';

/** Admin writes (accounts, price book and its imports, overrides, reprice) and the audit trail they leave. */
@Module({
  imports: [IngestModule],
  controllers: [AccountsController, ModelsController, PriceImportController, PriceOverridesController, RepriceController, AuditLogController],
  providers: [AccountsService, ModelsService, PriceOverridesService, AdminRepriceService, AuditLogService],
  // The web dashboard's admin pages act through the same services.
  exports: [AccountsService, ModelsService, PriceOverridesService, AdminRepriceService, AuditLogService],
})
export class AdminModule {}
