import { Module } from '@nestjs/common';
import { CreditsService } from '@tokenmeter/limits';
import { AdminCreditsController, CreditsController } from './credits.controller';

/** Credits: the admin grant routes and the account's read (docs/credits.md). */
@Module({
  controllers: [AdminCreditsController, CreditsController],
  providers: [CreditsService],
  exports: [CreditsService],
})
export class CreditsModule {}
