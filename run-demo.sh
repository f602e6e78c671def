#!/usr/bin/env bash
# Starts the chat demo on http://127.0.0.1:3000 (PORT=... to change it).
set -euo pipefail
cd "$(dirname "$0")"
exec cargo run --release -p chat-demo -- "$@"
