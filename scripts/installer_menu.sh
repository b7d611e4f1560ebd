#!/usr/bin/env bash
# Installer menu: re-run the configuration wizard, install optional binding dependencies,
# manage binding instances. Usage: scripts/installer_menu.sh [--config-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x venv/bin/python ]; then PY=venv/bin/python; else PY="${PYTHON:-python3}"; fi
case " $* " in
  *" --config-dir "*) exec "$PY" -m lollms_server menu "$@" ;;
  *) exec "$PY" -m lollms_server menu --config-dir "${LOLLMS_CONFIG_DIR:-lollms_configs}" "$@" ;;
esac
