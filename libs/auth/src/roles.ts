import type { ApiKeyRole } from '@tokenmeter/db';

/**
 * - `admin`: everything.
 * - `auditor`: reads whatever an admin may read (every GET an admin key may call), writes nothing.
 * - `account`: its own account's data.
 */
export type Role = ApiKeyRole;
export const ROLES: readonly [Role, ...Role[]] = ['admin', 'auditor', 'account'];

/** Who is calling: resolved from the bearer key by the authenticator (the API's guard attaches it to the request). */
export interface Principal {
  keyId: string;
  prefix: string;
  role: Role;
  /** Set for account keys; null for admin and auditor keys. */
  accountId: string | null;
}

/** Who made an admin write and in which request: recorded on its audit entry. */
export interface Actor {
  /** null: the CLI or the start-up bootstrap (the database's authority, not a key's). */
  keyId: string | null;
  requestId: string | null;
}
