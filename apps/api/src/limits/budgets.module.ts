import { Module } from '@nestjs/common';
import { BudgetsService } from '@tokenmeter/limits';
import { AdminBudgetsController, BudgetsController } from './budgets.controller';

/** Budgets: the admin routes and the account's read (docs/limits.md). */
@Module({
  controllers: [AdminBudgetsController, BudgetsController],
  providers: [BudgetsService],
  exports: [BudgetsService],
})
export class BudgetsModule {}
