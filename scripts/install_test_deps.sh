#!/usr/bin/env bash
# What the tests need beyond Python packages (Debian packages): Chromium for the web UI browser tests, the
# DejaVu fonts the screenshot tests pin, redis-server for the scale-out tests and haproxy for the deployment recipe
# tests (they start their own instances on free ports with generated settings; the system services are never
# started: a policy-rc.d refuses it while apt-get runs). Installs only when running as root and something is
# missing; never downloads a browser any other way.
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
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  need+=(haproxy)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (apt-get) for the web UI, scale-out and deployment tests"
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then  # services installed now stay stopped (the tests run their own instances)
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
else
  echo "missing for the web UI browser / scale-out / deployment tests: ${need[*]} (install with: sudo apt-get install ${need[*]})" >&2
fi
