#!/usr/bin/env bash
# C100K: how many concurrent WebSocket clients one server process holds.
#
#   bench/c100k.sh                       100 000 clients (or as many as the fd limit allows), 5 min hold
#   bench/c100k.sh --clients 20000 --hold 60 --server ours
#
# One release `conformance-server` (default heartbeat: ping every 25 s,
# 20 s timeout) and the `loadgen` scenario `hold`: the clients connect (100
# handshakes in flight), spread over loopback source addresses 127.0.0.x
# (~28 000 ephemeral ports each towards one server address), stay connected
# for the hold answering every ping, then one `io.emit` (the `ping-all`
# event with n = 1) must reach every client. The JSON line goes to
# bench/results/c100k.jsonl; a summary is printed.
#
# Limits: both processes raise RLIMIT_NOFILE to their hard limit; a client
# count above what the hard limit allows is lowered (and said so), since no
# unprivileged process can go past it. Raise the hard limit first
# (`ulimit -Hn 1048576` as root, or LimitNOFILE= in a unit) to run the full
# 100 000: the server needs one descriptor per client plus ~20.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
CLIENTS=100000
HOLD=300
SERVER=ours
PAYLOAD=100
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=$2; shift ;;
    --hold) HOLD=$2; shift ;;
    --server) SERVER=$2; shift ;;
    *) echo "c100k.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
# The server holds one descriptor per client, plus its listener, the
# runtime's and a margin; the load generator as many plus the trigger client.
MAX=$((NOFILE - 64))
if [ "$CLIENTS" -gt "$MAX" ]; then
  echo "c100k.sh: RLIMIT_NOFILE hard limit is $NOFILE: lowering --clients $CLIENTS to $MAX" >&2
  CLIENTS=$MAX
fi
SOURCES=${SOURCES:-$(( (CLIENTS + 24999) / 25000 ))}

echo "c100k.sh: building (release)" >&2
(cd "$ROOT" && cargo build --release -q -p conformance-server)
(cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release -q -p loadgen -p socketioxide-server)
OURS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/conformance-server"
SX_BIN="$BENCH/target/release/socketioxide-server"
LOADGEN="$BENCH/target/release/loadgen"
mkdir -p "$BENCH/results" "$BENCH/target/logs"

PORT=20900
while [ -n "$(ss -Htln "sport = :$PORT" 2>/dev/null)" ]; do PORT=$((PORT + 1)); done
LOG="$BENCH/target/logs/c100k-$SERVER.log"
rm -f "$LOG"
case "$SERVER" in
  ours) "$OURS_BIN" --port "$PORT" --log-level warn >"$LOG" 2>&1 & ;;
  socketioxide) "$SX_BIN" --port "$PORT" >"$LOG" 2>&1 & ;;
  node) node "$BENCH/servers/node/server.js" --port "$PORT" >"$LOG" 2>&1 & ;;
  *) echo "c100k.sh: unknown server $SERVER" >&2; exit 2 ;;
esac
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "^listening on" "$LOG" 2>/dev/null && break
  sleep 0.1
done

echo "c100k.sh: $CLIENTS clients over $SOURCES source address(es), hold ${HOLD}s, server $SERVER (pid $SERVER_PID)" >&2
LINE=$("$LOADGEN" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" --label "$SERVER" \
  --scenario hold --clients "$CLIENTS" --sources "$SOURCES" --duration "$HOLD" \
  --payload "$PAYLOAD" --timeout $((HOLD + 300)) || true)
[ -n "$LINE" ] || LINE="{\"scenario\":\"hold\",\"server\":\"$SERVER\",\"ok\":false,\"error\":\"loadgen crashed\"}"
echo "$LINE" >>"$BENCH/results/c100k.jsonl"
echo "$LINE"
echo "$LINE" | grep -q '"ok":true'
