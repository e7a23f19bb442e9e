import { Module } from '@nestjs/common';
import { UsageModule } from '../usage/usage.module';
import { AdminUsageController } from './admin-usage.controller';
import { AdminUsageService } from './admin-usage.service';

/** Admin audit reads: events across accounts, export, rejections, conflicts, unpriced usage, account totals. */
@Module({
  imports: [UsageModule],
  controllers: [AdminUsageController],
  providers: [AdminUsageService],
  exports: [AdminUsageService],
})
export class AdminUsageModule {}
