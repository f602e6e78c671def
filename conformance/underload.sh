#!/usr/bin/env bash
# Runs conformance test files N times while busy loops keep every core busy, records each
# run and prints which tests failed, how often and with what message. See README.md,
# "Under load". Bounded: each busy loop and each run has its own time limit, and the
# whole series stops starting runs after --max-minutes.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: conformance/underload.sh [options]
  --runs N            runs of the files (default 10)
  --files 'GLOBS'     test files, relative to conformance/ (default
                      'test/engineio-*.test.js test/socketio-*.test.js'; 'all' = test/*.test.js)
  --load K            busy loops (default: one per core, `nproc`)
  --no-load           no busy loop (the same runs on a quiet machine, for comparison)
  --max-minutes M     start no run after M minutes (default 120); the loops die after M+30
  --run-timeout S     kill a run after S seconds (default 1800)
  --out DIR           output directory (default conformance/target/underload/<UTC time>)
  --env K=V           an environment variable for the runs, its value taken whole (spaces
                      included); repeatable, e.g. --env 'CONFORMANCE_SERVER_ARGS=--per-message-deflate 0'
Each run writes run-I.jsonl (one line per test: name, ok, time, failure message) and
run-I.spec (node's spec output) in the output directory; the summary is summary.txt.
The script fails if a test failed or a run exited non-zero (e.g. could not start).
While /tmp/bench.lock exists (a benchmark window) the loops are stopped and no run starts.
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runs=10
files='test/engineio-*.test.js test/socketio-*.test.js'
load="$(nproc 2>/dev/null || echo 2)"
max_minutes=120
run_timeout=1800
out=''
extra_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --load) load="$2"; shift 2 ;;
    --no-load) load=0; shift ;;
    --max-minutes) max_minutes="$2"; shift 2 ;;
    --run-timeout) run_timeout="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --env)
      case "$2" in *=*) ;; *) echo "--env wants K=V, got: $2" >&2; exit 2 ;; esac
      extra_env+=("$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ "$files" = all ] && files='test/*.test.js'
for n in "$runs" "$load" "$max_minutes" "$run_timeout"; do
  case "$n" in ''|*[!0-9]*) echo "not a number: $n" >&2; exit 2 ;; esac
done

cd "$here"
binary="${CONFORMANCE_SERVER:-$here/../target/debug/conformance-server}"
if [ ! -x "$binary" ]; then
  echo "no server binary at $binary: run \`cargo build -p conformance-server\` at the repository root" >&2
  exit 2
fi
[ -d node_modules ] || { echo "no node_modules: run \`npm ci\` in conformance/" >&2; exit 2; }
# shellcheck disable=SC2086 # the globs are meant to expand
set -- $files
[ -e "$1" ] || { echo "no test file matches: $files" >&2; exit 2; }
test_files=("$@")

out="${out:-$here/target/underload/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

loop_pids=()
start_load() {
  local i
  for ((i = 0; i < load; i++)); do
    # A busy loop at normal priority; `timeout` bounds it even if this script is killed.
    timeout "$(( (max_minutes + 30) * 60 ))" bash -c 'while :; do :; done' &
    loop_pids+=("$!")
  done
}
stop_load() {
  local pid
  for pid in "${loop_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${loop_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  loop_pids=()
}
run_pid=''
cleanup() {
  if [ -n "$run_pid" ]; then kill "$run_pid" 2>/dev/null || true; fi
  stop_load
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_bench() {
  if [ -f /tmp/bench.lock ]; then
    echo "$(date -u +%T) /tmp/bench.lock present: load stopped, waiting" >&2
    stop_load
    while [ -f /tmp/bench.lock ]; do sleep 20; done
  fi
}

{
  echo "started $(date -u +%FT%TZ) runs=$runs load=$load files=$files"
  if [ "${#extra_env[@]}" -gt 0 ]; then echo "extra env: ${extra_env[*]}; server $binary"; else echo "extra env: none; server $binary"; fi
  echo "git: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$here" diff --quiet 2>/dev/null || echo ' (dirty)')"
} | tee "$out/info.txt"

deadline=$(( $(date +%s) + max_minutes * 60 ))
done_runs=0
bad_exits=()
for ((run = 1; run <= runs; run++)); do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "--max-minutes reached: stopping after $done_runs runs" | tee -a "$out/info.txt"
    break
  fi
  wait_bench
  [ "${#loop_pids[@]}" -eq 0 ] && start_load
  started=$(date +%s)
  echo "$(date -u +%T) run $run/$runs (load: ${#loop_pids[@]} busy loops)" >&2
  env "${extra_env[@]}" timeout --kill-after=30 "$run_timeout" \
    node --test --test-concurrency=1 \
      --test-reporter="$here/underload-report.js" --test-reporter-destination="$out/run-$run.jsonl" \
      --test-reporter=spec --test-reporter-destination="$out/run-$run.spec" \
      "${test_files[@]}" >"$out/run-$run.stdout" 2>&1 &
  run_pid=$!
  status=0
  wait "$run_pid" || status=$?
  run_pid=''
  done_runs=$run
  [ "$status" -eq 0 ] || bad_exits+=("run $run: exit $status")
  echo "$(date -u +%T) run $run: exit $status after $(( $(date +%s) - started )) s, load average $(cut -d' ' -f1-3 /proc/loadavg)" \
    | tee -a "$out/info.txt" >&2
done
stop_load

node "$here/underload-report.js" "$out" | tee "$out/summary.txt"
if [ "${#bad_exits[@]}" -gt 0 ]; then
  # A failing test exits 1 too; a run that never started (or was killed) has no
  # failing test to show, and must not pass for a clean one.
  { echo "runs with a non-zero exit (see run-I.stdout):"; printf '  %s\n' "${bad_exits[@]}"; } \
    | tee -a "$out/summary.txt"
fi
echo "output: $out"
# Fail when any run had a failing test or did not complete.
! grep -q '^failures' "$out/summary.txt" && [ "${#bad_exits[@]}" -eq 0 ]
