#!/usr/bin/env bash
# Starts the chat demo and prints its URL (http://127.0.0.1:3000 by default).
# Flags go to the server: ./run-demo.sh --port 8080 --host 0.0.0.0; PORT=... works too.
set -euo pipefail
cd "$(dirname "$0")"
# The page loads the official socket.io-client from chat-demo/node_modules.
if [ ! -d chat-demo/node_modules ] || [ chat-demo/package-lock.json -nt chat-demo/node_modules ]; then
  (cd chat-demo && npm ci --no-audit --no-fund)
fi
exec cargo run --release -p chat-demo -- "$@"
