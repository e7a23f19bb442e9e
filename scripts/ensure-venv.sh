#!/usr/bin/env bash
# A cached Python virtualenv per pinned requirements file, for the tools and packages the suite
# drives from Python (scripts/ensure-schemathesis.sh, scripts/ensure-litellm.sh). Idempotent: a
# warm run only compares the requirements file's checksum (~0.01 s); a changed file rebuilds it.
#   bash scripts/ensure-venv.sh <name> <requirements file> <program in the venv's bin/>
#     -> prints the program's path; the venv is ${TOKENMETER_CACHE:-~/.cache/tokenmeter}/<name>
set -euo pipefail
[ "$#" -eq 3 ] || { echo "usage: $0 <name> <requirements file> <program>" >&2; exit 2; }
NAME="$1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/$2"
VENV="${TOKENMETER_CACHE:-$HOME/.cache/tokenmeter}/$NAME"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [ -x "$VENV/bin/$3" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/$3"
  exit 0
fi

PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "[$NAME] python3 not found (need Python >= 3.9)" >&2; exit 1; }
if ! "$PY" -m venv --help >/dev/null 2>&1; then
  echo "[$NAME] installing python3-venv with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -q --no-install-recommends python3-venv >&2
fi
echo "[$NAME] creating $VENV (pinned: $2; a first install downloads from PyPI)" >&2
started=$SECONDS
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
# Not -q: pip's "Collecting <package>" lines show that a slow first install is moving (the
# download lines under them are left out).
set +e
"$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -r "$REQ" 2>&1 \
  | grep --line-buffered -v -E '^\s+(Downloading|Using cached) ' >&2
pip_status=${PIPESTATUS[0]}
set -e
[ "$pip_status" -eq 0 ] || { echo "[$NAME] pip install failed (exit $pip_status)" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "[$NAME] installed in $((SECONDS - started)) s" >&2
echo "$VENV/bin/$3"
