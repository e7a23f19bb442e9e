#!/usr/bin/env bash
# Installs LiteLLM and the Kafka client the LiteLLM integration (integrations/litellm) is tested
# with into a cached virtualenv, pinned by integrations/litellm/requirements.txt. Idempotent: a
# warm run only compares a checksum. The first install downloads ~60 wheels from PyPI; pip's
# progress goes to stderr.
#   bash scripts/ensure-litellm.sh   -> prints the path of the venv's `python`
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/integrations/litellm/requirements.txt"
VENV="${TOKENMETER_CACHE:-$HOME/.cache/tokenmeter}/litellm"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/python"
  exit 0
fi

PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "[litellm] python3 not found (need Python >= 3.9)" >&2; exit 1; }
if ! "$PY" -m venv --help >/dev/null 2>&1; then
  echo "[litellm] installing python3-venv with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -q --no-install-recommends python3-venv >&2
fi
echo "[litellm] creating $VENV (pinned: integrations/litellm/requirements.txt; the first install takes a minute or more)" >&2
started=$SECONDS
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
# Not -q: pip's "Collecting <package>" lines show a slow first install is moving (the download
# lines under them are left out).
set +e
"$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -r "$REQ" 2>&1 \
  | grep --line-buffered -v -E '^\s+(Downloading|Using cached) ' >&2
pip_status=${PIPESTATUS[0]}
set -e
[ "$pip_status" -eq 0 ] || { echo "[litellm] pip install failed (exit $pip_status)" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "[litellm] installed in $((SECONDS - started)) s" >&2
echo "$VENV/bin/python"
