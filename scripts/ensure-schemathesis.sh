#!/usr/bin/env bash
# Installs schemathesis (the schema-driven API fuzzer the suite runs against /openapi.json) into a
# cached virtualenv, pinned by test/fuzz/requirements.txt (scripts/ensure-venv.sh). Idempotent.
#   bash scripts/ensure-schemathesis.sh   -> prints the path of the `st` executable
exec bash "$(dirname "${BASH_SOURCE[0]}")/ensure-venv.sh" schemathesis test/fuzz/requirements.txt st
