#!/usr/bin/env bash
# Runs every test of the workspace, installing what it needs first.
# Usage: ./test.sh            (everything)
#        ./test.sh --rust     (only the Rust gates)
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests start themselves: redis-server (cluster tests, Rust
# and Node; its redis-cli builds the Redis Cluster), nginx (the sticky-session
# recipe) and chromium (the Admin UI, permessage-deflate and chat demo browser
# tests).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]} (apt-get)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace (unit, integration, doc tests)"
cargo test --workspace --no-fail-fast

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

if [ "${1:-}" = "--rust" ]; then exit 0; fi

step "build conformance-server and the examples (conformance/test/axum.test.js runs the axum one)"
cargo build -p conformance-server
cargo build -p socketio-examples --examples

step "conformance: official clients against our server"
(cd conformance && npm ci --no-audit --no-fund && npm test)

step "soak: churn with the official clients (short run)"
(cd conformance && npm run soak -- --duration 60)

step "recovery race: 800 recoveries under a broadcast every 2 ms, none may lose or reorder one"
(cd conformance && npm run recovery-race)

step "chat demo: browser end-to-end test (headless Chromium)"
chat-demo/e2e/run.sh

step "benchmarks, quick mode: ours, socketioxide, Node (correctness only: every message delivered intact)"
bench/run.sh --quick --output bench/target/BENCHMARKS-quick.md

echo
echo "all tests passed"
