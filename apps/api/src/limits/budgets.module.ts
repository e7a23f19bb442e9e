import { Module } from '@nestjs/common';
import { BudgetsService } from '@tokenmeter/limits';
import { AdminBudgetsController, BudgetReconciliationController, BudgetsController } from './budgets.controller';

/** Budgets: the admin routes and the account's read (docs/limits.md). */
@Module({
  controllers: [AdminBudgetsController, BudgetReconciliationController, BudgetsController],
  providers: [BudgetsService],
  exports: [BudgetsService],
})
export class BudgetsModule {}
