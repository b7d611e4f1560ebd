#!/usr/bin/env bash
# Serve lollms_server with the configuration in lollms_configs/ (or $LOLLMS_CONFIG_DIR).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x venv/bin/lollms-server ]; then
  echo "not installed yet: run ./install.sh first" >&2
  exit 1
fi
exec venv/bin/lollms-server serve "$@"
