#!/usr/bin/env bash
# Browser end-to-end test of the chat demo: installs Debian's chromium if it
# is missing, installs the npm packages, builds the server, runs the test.
# Usage: chat-demo/e2e/run.sh   (from anywhere; needs root or sudo for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (apt-get)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi

echo "==> npm ci (chat-demo)"
npm ci --no-audit --no-fund

echo "==> cargo build -p chat-demo"
(cd .. && cargo build -p chat-demo)

echo "==> browser end-to-end test"
npm run e2e
