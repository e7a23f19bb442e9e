#!/usr/bin/env bash
# Installs Debian's chromium package for the dashboard's browser tests (test/helpers/browser.ts),
# like services.sh installs Postgres: no npm package downloads a browser. Idempotent; a machine
# that has it answers in milliseconds. Prints the executable's path.
set -euo pipefail
BIN="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$BIN" ]; then
  echo "[chromium] installing Debian's chromium package with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 chromium >&2 || {
    $SUDO apt-get update -q >&2
    $SUDO apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 chromium >&2
  }
fi
echo "$BIN"
