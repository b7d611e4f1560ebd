#!/usr/bin/env bash
# What the tests need beyond Python packages (Debian packages): Chromium for the web UI browser tests, the
# DejaVu fonts the screenshot tests pin, and redis-server for the scale-out tests (they start their own on a free
# port; the system service is never used). Installs only when running as root and something is missing; never
# downloads a browser any other way.
set -euo pipefail
need=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  need+=(chromium)
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ]; then
  need+=(fonts-dejavu-core)
fi
if ! command -v redis-server >/dev/null 2>&1; then
  need+=(redis-server)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (apt-get) for the web UI and scale-out tests"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
else
  echo "missing for the web UI browser / scale-out tests: ${need[*]} (install with: sudo apt-get install ${need[*]})" >&2
fi
