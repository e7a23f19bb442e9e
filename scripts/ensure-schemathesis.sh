#!/usr/bin/env bash
# Installs schemathesis (the schema-driven API fuzzer the suite runs against /openapi.json) into a
# cached virtualenv, pinned by test/fuzz/requirements.txt. Idempotent: a warm run takes ~0.1 s.
#   bash scripts/ensure-schemathesis.sh   -> prints the path of the `st` executable
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/test/fuzz/requirements.txt"
VENV="${TOKENMETER_CACHE:-$HOME/.cache/tokenmeter}/schemathesis"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [ -x "$VENV/bin/st" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/st"
  exit 0
fi

PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "[schemathesis] python3 not found (need Python >= 3.9)" >&2; exit 1; }
if ! "$PY" -m venv --help >/dev/null 2>&1; then
  echo "[schemathesis] installing python3-venv with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -q --no-install-recommends python3-venv >&2
fi
echo "[schemathesis] creating $VENV (pinned: test/fuzz/requirements.txt)" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2
echo "$want" > "$STAMP"
echo "$VENV/bin/st"
