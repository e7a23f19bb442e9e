#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, e2e) against real services:
#   npm test                      (= node scripts/ensure-deps.js && bash scripts/test.sh)
#   npm test -- --selectProjects unit
#   npm test -- test/integration/migrate.test.ts
# Arguments are passed to jest.
#
# The tests always get the TEST database (TEST_DATABASE_URL, default tokenmeter_test), never an
# inherited DATABASE_URL, so a run cannot touch the development database.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The read-replica test (test/e2e/read-replica.test.ts) starts the streaming replica itself
# (services.sh up postgres --replica) and removes it after, if it made it: a run without that
# test pays nothing for it.
bash scripts/services.sh up

export DATABASE_URL="${TEST_DATABASE_URL:-postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter_test}"
export KAFKA_BROKERS=127.0.0.1:9092
export STRIPE_API_BASE=http://127.0.0.1:12111
# Topics an app creates in a test get few partitions (the default, 120, is for deployments): fast to
# create and delete, and the count most tests' own topics have. Tests that need another set it.
export KAFKA_USAGE_TOPIC_PARTITIONS="${KAFKA_USAGE_TOPIC_PARTITIONS:-6}"

# The schema-driven fuzzer (test/e2e/api-fuzz.test.ts) runs schemathesis from a cached, pinned venv.
echo "[test] schemathesis: $(bash scripts/ensure-schemathesis.sh)"
# The LiteLLM integration's end-to-end test (test/e2e/litellm.test.ts) runs the real litellm
# package from a cached, pinned venv (integrations/litellm/requirements.txt).
echo "[test] litellm: $(bash scripts/ensure-litellm.sh)"
# The dashboard's browser tests drive Debian's Chromium (installed like Postgres, never by npm).
echo "[test] chromium: $(bash scripts/ensure-chromium.sh) ($(chromium --version 2>/dev/null || echo '?'))"

echo "[test] applying migrations to ${DATABASE_URL#*@}"
npm run --silent db:migrate

# Type errors and lint errors (eslint.config.js: typescript-eslint, import boundaries, line
# length) fail the run too (ts-jest and ts-node only transpile). Skipped when a subset of tests
# is asked for, to keep the edit-test loop fast.
if [ "$#" -eq 0 ]; then
  echo "[test] type-checking (tsc --noEmit)"
  npx tsc -p tsconfig.json --noEmit
  echo "[test] linting (eslint)"
  npm run --silent lint
fi

echo "[test] jest --runInBand $*"
npx jest --runInBand "$@"
