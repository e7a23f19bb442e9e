-- CreateEnum
CREATE TYPE "api_key_role" AS ENUM ('admin', 'auditor', 'account');

-- AlterTable
-- Converted in place (the generated DROP COLUMN / ADD COLUMN would throw away every key's role).
-- A row with a role outside the enum makes this fail, and the migration changes nothing.
ALTER TABLE "api_keys" ALTER COLUMN "role" SET DATA TYPE "api_key_role" USING ("role"::"api_key_role");

-- Not expressible in schema.prisma: an account key names its account; admin and auditor keys name
-- none. ApiKeysService refuses both already; this keeps hand-made rows honest too. A trigger, not a
-- CHECK constraint: the Wasm schema engine behind the drift check panics on CHECK constraints.
CREATE FUNCTION api_keys_account_matches_role() RETURNS trigger AS $$
BEGIN
  IF (NEW.role = 'account') <> (NEW.account_id IS NOT NULL) THEN
    RAISE EXCEPTION 'api_keys: % key % (id %)', NEW.role,
      CASE WHEN NEW.role = 'account' THEN 'needs an account_id' ELSE 'must not have an account_id' END, NEW.id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_account_matches_role
  BEFORE INSERT OR UPDATE OF role, account_id ON "api_keys"
  FOR EACH ROW EXECUTE FUNCTION api_keys_account_matches_role();
