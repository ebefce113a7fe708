#!/usr/bin/env bash
# Builds the web UI (web/) into the Python package (src/clearsight/web_dist/, gitignored):
# `npm ci` when the lock file changed, then `tsc --noEmit && vite build`. The Makefile runs it only
# when a file under web/ changed (stamp: src/clearsight/web_dist/.stamp).
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
  echo "build-ui: npm is not installed (Debian: apt-get install nodejs npm; Node >= 20.19)" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
touch ../src/clearsight/web_dist/.stamp
