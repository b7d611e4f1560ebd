#!/usr/bin/env bash
# What the tests need beyond Python packages: Chromium for the web UI browser tests (Debian package).
# Installs only when running as root and the browser is missing; never downloads a browser any other way.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (apt-get) for the web UI tests"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
else
  echo "chromium is missing: install it (sudo apt-get install chromium) to run the web UI browser tests" >&2
fi
