#!/usr/bin/env bash
# Build the web UI into webui/dist (served at / by lollms-server when webui.enable_ui is on).
# Needs Node.js >= 20 and npm; fetches nothing but the npm packages pinned in webui/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../webui"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js 20+ to build the web UI (the API works without it)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old to build the web UI: Node.js 20+ is needed" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "web UI built into webui/dist"
