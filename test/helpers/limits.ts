import {
  AccountsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  BudgetSpendRepository,
  BudgetsRepository,
  CreditGrantsRepository,
  CreditLedgerRepository,
  CreditUsageRepository,
  Transactor,
  type Database,
} from '@tokenmeter/db';
import { BudgetsService, CreditsService } from '@tokenmeter/limits';

/** BudgetsService on a test database's pool, wired as the API module wires it. */
export function budgetsServiceOn(db: Database): BudgetsService {
  return new BudgetsService(
    new BudgetsRepository(db.pool),
    new BudgetSpendRepository(db.pool),
    new AccountsRepository(db.pool),
    new ApiKeysRepository(db.pool),
    new AuditLogRepository(db.pool),
    new Transactor(db.pool),
  );
}

/** CreditsService on a test database's pool, wired as the API module wires it. */
export function creditsServiceOn(db: Database): CreditsService {
  return new CreditsService(
    new CreditGrantsRepository(db.pool),
    new CreditLedgerRepository(db.pool),
    new CreditUsageRepository(db.pool),
    new AccountsRepository(db.pool),
    new AuditLogRepository(db.pool),
    new Transactor(db.pool),
  );
}

/** What tests pass as the actor of an audited change. */
export const TEST_ACTOR = { keyId: null, requestId: 'test' };
