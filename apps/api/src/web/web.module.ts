import { Module } from '@nestjs/common';
import { AdminUsageModule } from '../admin-usage/admin-usage.module';
import { AdminModule } from '../admin/admin.module';
import { AuthModule } from '../auth/auth.module';
import { CreditsModule } from '../credits/credits.module';
import { InvoicesModule } from '../invoices/invoices.module';
import { BudgetsModule } from '../limits/budgets.module';
import { UsageModule } from '../usage/usage.module';
import { DashboardLinksController } from './dashboard-links.controller';
import { ACCOUNT_PAGE_CONTROLLERS } from './pages/account';
import { ADMIN_PAGE_CONTROLLERS } from './pages/admin';
import { AssetsController } from './pages/assets.controller';
import { OverviewController } from './pages/overview.controller';
import { SignInController } from './pages/sign-in.controller';
import { WebSessionGuard } from './web-session.guard';
import { WebSessionsService } from './web-sessions.service';

/**
 * The web dashboard under /app (docs/web.md): server-rendered pages over the same services the
 * JSON API uses, sessions in HttpOnly cookies, and the admin route that mints dashboard links.
 */
@Module({
  imports: [AuthModule, UsageModule, InvoicesModule, AdminModule, AdminUsageModule, BudgetsModule, CreditsModule],
  controllers: [SignInController, AssetsController, OverviewController, DashboardLinksController, ...ADMIN_PAGE_CONTROLLERS, ...ACCOUNT_PAGE_CONTROLLERS],
  providers: [WebSessionsService, WebSessionGuard],
  exports: [WebSessionsService],
})
export class WebModule {}
