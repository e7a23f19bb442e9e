import {
  AccountsRepository,
  ApiKeysRepository,
  AuditLogRepository,
  BudgetSpendRepository,
  BudgetsRepository,
  Transactor,
  type Database,
} from '@tokenmeter/db';
import { BudgetsService } from '@tokenmeter/limits';

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

/** What tests pass as the actor of an audited change. */
export const TEST_ACTOR = { keyId: null, requestId: 'test' };
