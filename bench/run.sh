#!/usr/bin/env bash
# Side-by-side benchmark: our conformance-server vs socketioxide vs Node socket.io.
#
#   bench/run.sh            3 rounds, full counts (~10 min), writes BENCHMARKS.md
#   bench/run.sh --quick    1 round, small counts (smoke test, ~1 min; exits 1
#                           if any run lost or corrupted a message)
#   bench/run.sh --rounds 5 --servers "ours socketioxide" --scenarios "fanout rooms"
#   bench/run.sh --threads 2 --output bench/results/BENCHMARKS-2threads.md
#
# --threads N: the Rust servers' runtime gets N worker threads
# (TOKIO_WORKER_THREADS). With 1 (the default) the server is pinned to CPU 0
# and the load generator to CPU 1; with more, neither is pinned: the server
# may use both cores and the load generator shares them (compare the server
# CPU per message with the 1-thread run, and the throughput).
#   OURS_B=/tmp/old/conformance-server bench/run.sh --servers "ours ours-b socketioxide" ...
#       A/B of two builds: `ours-b` runs the binary OURS_B names (compare the
#       raw lines; the tables show ours / socketioxide / node only)
#   bench/run.sh --rounds 1 --servers "ours ours-admin-prod ours-admin ours-admin-ui" \
#                --scenarios "echo fanout" --output bench/target/admin.md --raw target/admin.jsonl
#       the Admin UI's cost: ours with `--admin --admin-mode production`, with `--admin`
#       (development mode) and no UI connected, and with one UI connected
#       (servers/admin-ui-client.js on CPU 1); the report's tables show ours /
#       socketioxide / node only: compare the raw lines.
#
# The codec table comes from the last `cargo bench` in bench/codec, if any
# (bench/target/criterion); the profile notes from bench/profile.md.
#
# Each run: a fresh server process pinned to CPU 0, the load generator pinned
# to CPU 1; servers interleaved (ours, socketioxide, node, ours, ...). Raw JSON
# lines go to bench/results/last-run.jsonl (bench/target/last-quick.jsonl for
# --quick), the tables to BENCHMARKS.md (or --output FILE).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
CMD="bench/run.sh $*"
ROUNDS=3
QUICK=0
SERVERS="ours socketioxide node"
SCENARIOS="connect-1000 connect-5000 echo fanout rooms"
OUT="$ROOT/BENCHMARKS.md"
THREADS=1
RAW_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --output) OUT=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --raw) RAW_ARG=$2; shift ;;
    *) echo "run.sh: unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  CONNECT_SMALL=200; CONNECT_BIG=1000; ECHO_CLIENTS=20; ECHO_SECS=2; WARMUP=0.5
  BCAST_CLIENTS=200; BURSTS=2; SETTLE=1
else
  CONNECT_SMALL=1000; CONNECT_BIG=5000; ECHO_CLIENTS=50; ECHO_SECS=10; WARMUP=1
  # 10 bursts of 100 messages to 1000 clients: 1 000 000 deliveries per
  # fanout / rooms run (~1 s for the Rust servers, ~10 s for Node).
  BCAST_CLIENTS=1000; BURSTS=10; SETTLE=2
fi

export TOKIO_WORKER_THREADS=$THREADS
if [ "$THREADS" = 1 ]; then SERVER_CPUS=0; LOADGEN_CPUS=1; else SERVER_CPUS=0-1; LOADGEN_CPUS=0-1; fi

# Enough file descriptors for 5000 connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "run.sh: ulimit -n = $(ulimit -n)" >&2

echo "run.sh: building (release)" >&2
# The bench workspace always builds into bench/target (whatever CARGO_TARGET_DIR says).
(cd "$ROOT" && cargo build --release -q -p conformance-server)
BENCH_PKGS=(-p loadgen)
case " $SERVERS " in *" socketioxide "*) BENCH_PKGS+=(-p socketioxide-server) ;; esac
(cd "$BENCH" && CARGO_TARGET_DIR="$BENCH/target" cargo build --release -q "${BENCH_PKGS[@]}")
if [[ " $SERVERS " == *" node "* ]] && [ ! -d "$BENCH/servers/node/node_modules/socket.io" ]; then
  (cd "$BENCH/servers/node" && npm ci --no-audit --no-fund --silent)
fi

OURS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/conformance-server"
SX_BIN="$BENCH/target/release/socketioxide-server"
LOADGEN="$BENCH/target/release/loadgen"
REPORT="$BENCH/target/release/report"
mkdir -p "$BENCH/results" "$BENCH/target/logs"
# Raw lines of the last full run are kept with BENCHMARKS.md; a quick run's
# (a smoke test, run by the README's test command) go to the ignored target/.
if [ "$QUICK" = 1 ]; then RAW=target/last-quick.jsonl; else RAW=results/last-run.jsonl; fi
if [ -n "$RAW_ARG" ]; then RAW=$RAW_ARG; fi
RESULTS="$BENCH/$RAW"
: > "$RESULTS"

# Server ports below the ephemeral range (32768+), so that the thousands of
# client sockets (and their TIME-WAIT) never take a server's port.
PORT=21000
SERVER_PID=""
ADMIN_PID=""

start_server() { # name port
  local log="$BENCH/target/logs/$1-$2.log"
  # Remove the log of an earlier run first: the server's redirection truncates
  # it only once the background process runs, and an old "listening" line
  # would be taken for this server's.
  rm -f "$log"
  case "$1" in
    ours) taskset -c "$SERVER_CPUS" "$OURS_BIN" --port "$2" --log-level warn >"$log" 2>&1 & ;;
    ours-admin | ours-admin-ui) taskset -c "$SERVER_CPUS" "$OURS_BIN" --port "$2" --log-level warn --admin >"$log" 2>&1 & ;;
    ours-admin-prod) taskset -c "$SERVER_CPUS" "$OURS_BIN" --port "$2" --log-level warn --admin --admin-mode production >"$log" 2>&1 & ;;
    ours-b)
      # A/B runs: another build of conformance-server, named by OURS_B.
      taskset -c "$SERVER_CPUS" "${OURS_B:?ours-b needs OURS_B=/path/to/conformance-server}" --port "$2" --log-level warn >"$log" 2>&1 & ;;
    socketioxide) taskset -c "$SERVER_CPUS" "$SX_BIN" --port "$2" >"$log" 2>&1 & ;;
    node) taskset -c "$SERVER_CPUS" node "$BENCH/servers/node/server.js" --port "$2" >"$log" 2>&1 & ;;
    *) echo "run.sh: unknown server $1" >&2; return 1 ;;
  esac
  SERVER_PID=$!
  local up=0
  for _ in $(seq 100); do
    grep -q "^listening on" "$log" 2>/dev/null && { up=1; break; }
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" = 0 ]; then
    echo "run.sh: $1 did not start; see $log" >&2
    return 1
  fi
  [ "$1" = ours-admin-ui ] || return 0
  # An open Admin UI tab, on the load generator's CPU.
  local alog="$BENCH/target/logs/admin-ui-$2.log"
  NODE_PATH="$ROOT/conformance/node_modules" taskset -c 1 \
    node "$BENCH/servers/admin-ui-client.js" "http://127.0.0.1:$2" >"$alog" 2>&1 &
  ADMIN_PID=$!
  for _ in $(seq 100); do
    grep -q "^admin connected" "$alog" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run.sh: the admin UI client did not connect; see $alog" >&2
  return 1
}

stop_server() {
  if [ -n "$ADMIN_PID" ]; then
    kill -TERM "$ADMIN_PID" 2>/dev/null || true
    wait "$ADMIN_PID" 2>/dev/null || true
    ADMIN_PID=""
  fi
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

run_one() { # server scenario round
  local server=$1 scenario=$2 round=$3 args
  case "$scenario" in
    connect-1000) args=(--scenario connect --clients "$CONNECT_SMALL" --settle "$SETTLE" --timeout 90) ;;
    connect-5000) args=(--scenario connect --clients "$CONNECT_BIG" --settle "$SETTLE" --timeout 120) ;;
    echo) args=(--scenario echo --clients "$ECHO_CLIENTS" --duration "$ECHO_SECS" --warmup "$WARMUP" --timeout 60) ;;
    fanout) args=(--scenario fanout --clients "$BCAST_CLIENTS" --messages 100 --bursts "$BURSTS" --timeout 90) ;;
    rooms) args=(--scenario rooms --clients "$BCAST_CLIENTS" --room-size 10 --messages 100 --bursts "$BURSTS" --timeout 90) ;;
    *) echo "run.sh: unknown scenario $scenario" >&2; return 1 ;;
  esac
  PORT=$((PORT + 1))
  while [ -n "$(ss -Htln "sport = :$PORT" 2>/dev/null)" ]; do PORT=$((PORT + 1)); done
  if ! start_server "$server" "$PORT"; then
    stop_server
    printf '{"scenario":"%s","server":"%s","round":%s,"ok":false,"error":"server did not start"}\n' \
      "${scenario%%-*}" "$server" "$round" >>"$RESULTS"
    return 0
  fi
  local line
  line=$(taskset -c "$LOADGEN_CPUS" "$LOADGEN" --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --label "$server" --round "$round" --payload 100 "${args[@]}" || true)
  stop_server
  if [ -z "$line" ]; then
    line=$(printf '{"scenario":"%s","server":"%s","round":%s,"ok":false,"error":"loadgen crashed"}' \
      "${scenario%%-*}" "$server" "$round")
  fi
  echo "$line" >>"$RESULTS"
  echo "run.sh: round $round $scenario $server: $(echo "$line" | cut -c1-160)" >&2
}

START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    for server in $SERVERS; do
      run_one "$server" "$scenario" "$round"
    done
  done
done
echo "run.sh: done in $(( $(date +%s) - START )) s" >&2

NOTES="Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Rust servers' worker threads: $THREADS ($([ "$THREADS" = 1 ] && echo "server pinned to CPU 0, load generator to CPU 1" || echo "server and load generator unpinned, sharing both cores")). Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), Linux $(uname -r), Node $(node --version), $(rustc --version | cut -d' ' -f1-2); shared, noisy 2-core VM (other builds ran at the same time); ratios from one run."
"$REPORT" --input "$RESULTS" --output "$OUT" --command "$CMD" --notes "$NOTES" --raw "bench/$RAW" --profile "$BENCH/profile.md" \
  --codec "$BENCH/target/criterion"
echo "run.sh: wrote $OUT" >&2

# Correctness gate (what the README's test command relies on in --quick mode):
# every run must have delivered every message intact.
BAD=$(grep -vc '"ok":true' "$RESULTS" || true)
if [ ! -s "$RESULTS" ]; then
  echo "run.sh: no run recorded" >&2
  exit 1
fi
if [ "$BAD" != "0" ]; then
  echo "run.sh: $BAD run(s) lost or corrupted messages or failed:" >&2
  grep -v '"ok":true' "$RESULTS" | cut -c1-300 >&2
  exit 1
fi
echo "run.sh: every run delivered every message intact" >&2
