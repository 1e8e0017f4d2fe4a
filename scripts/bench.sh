#!/usr/bin/env bash
# Runs the standard pm-bench suite against fresh local pm-servers and writes BENCHMARKS.md.
#
#   scripts/bench.sh            # build release, run the suite (about 5 minutes), write BENCHMARKS.md
#   scripts/bench.sh --quick    # seconds-long runs with small numbers, to check the plumbing
#
# Environment:
#   PM_BENCH_SERVER=path   measure another pm-server binary (e.g. an older build) instead of
#                          target/release/pm-server
#   PM_BENCH_REFERENCE=path  the reference's server binary (default ../shared/reference/bin/
#                          bab-pm-server beside the repository); when it exists every goal
#                          scenario runs against it too and the report has a reference column
#   PM_BENCH_OUT=path      write the report there instead of BENCHMARKS.md
#   PM_BENCH_NOTES=path    hand-written notes appended to the report (default bench/NOTES.md)
#   PM_BENCH_RESULTS=dir   keep each scenario's JSON there (for `pm-bench compare`)
#   CARGO_TARGET_DIR=dir   build into (and run the binaries from) that directory
#
# Scenario `board` (opening a big board) runs the real `pm board` in tmux through
# scripts/bench-board.py (needs tmux and python3; left out, with a warning, without them).
#
# Every scenario gets its own fresh server (temporary data directory, port 0, the port read from
# <data-dir>/server.json). Loopback only. pm-bench reads the server's memory and CPU time from
# /proc/<pid>, so the server must run on this machine. Each scenario with a reference run runs
# against pm and the reference back to back, alternating which goes first, so that the machine's
# drift hits both; the reference gets its own temporary HOME and working directory (it keeps its
# database in $HOME/.pm and must not run inside a git checkout).
#
# The server's protective limits are raised for the benchmark (they are policy, not capacity):
# PM_RATE_LIMIT_PER_SEC / PM_RATE_LIMIT_BURST (a writer sends far more than 1,000 requests a
# second), PM_REST_RATE_LIMIT_PER_SEC / PM_REST_RATE_LIMIT_BURST (the same for REST, one bucket
# for all of the bench's clients since they share an address), PM_MAX_HTTP_CONNECTIONS_PER_IP
# (handshakes in flight from one address) and PM_SERVER_MAX_CONNECTIONS (10,000 idle
# connections plus the bench's own).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust from https://rustup.rs and try again." >&2
  exit 1
fi

echo "== building release binaries" >&2
# Where cargo puts them: CARGO_TARGET_DIR when set (relative to the repository), else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
if [ -z "${PM_BENCH_SERVER:-}" ]; then
  cargo build --release --locked -p pm-server -p pm-bench -p pm
  SERVER_BIN="$TARGET_DIR/release/pm-server"
else
  cargo build --release --locked -p pm-bench -p pm
  SERVER_BIN=$(cd "$(dirname "$PM_BENCH_SERVER")" && pwd)/$(basename "$PM_BENCH_SERVER")
fi
BENCH="$TARGET_DIR/release/pm-bench"
REFERENCE_BIN=${PM_BENCH_REFERENCE:-$ROOT/../shared/reference/bin/bab-pm-server}
if [ -x "$REFERENCE_BIN" ]; then
  REFERENCE_BIN=$(cd "$(dirname "$REFERENCE_BIN")" && pwd)/$(basename "$REFERENCE_BIN")
  REFERENCE_NOTE=""
  echo "== the reference: $REFERENCE_BIN" >&2
else
  echo "warning: no reference binary at $REFERENCE_BIN; the report's reference column says so" >&2
  REFERENCE_NOTE="reference binary not found"
fi
OUT=${PM_BENCH_OUT:-BENCHMARKS.md}
NOTES=${PM_BENCH_NOTES:-bench/NOTES.md}

# Idle connections need one descriptor each in the bench and in the server: raise the soft limit
# to the hard one (pm-bench raises its own too), and size the idle run to what is allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
IDLE=10000
if [ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt $((IDLE + 200)) ]; then
  IDLE=$((FD_LIMIT - 200))
  echo "warning: ulimit -n is $FD_LIMIT; the idle run uses $IDLE connections (raise the hard limit for 10,000)" >&2
fi

# name|pm-bench arguments|the reference's arguments ("=": the same; empty: no reference run)
# [|floor runs: as many runs of pm and of `pm-bench floor-server` each, alternating, for the
# goals set against the floor; the summary takes the median].
if [ "$QUICK" = 1 ]; then
  SUITE=(
    "fanout-100|fanout -n 20 -r 100 -d 2 --warmup 0.5|="
    "fanout-1000|fanout -n 100 -r 100 -d 2 --warmup 0.5|=|1"
    "throughput|throughput -w 2 -n 10 -d 2 --rounds 2|=|1"
    "throughput-create|throughput -w 2 -n 10 -d 2 --op create|="
    "slow-consumer|slow-consumer -n 10 -r 50 -d 2 --warmup 0.5|="
    "idle|idle -c 200 --settle 1|="
    "growth|growth --sizes 0,500 --samples 20|="
    "resume-storm|resume-storm -c 50 -e 100 -d 2 --warmup 0.5|"
    "presence|presence -u 100 -d 3 --settle 1|"
    "floor-slow-consumer|slow-consumer -n 10 -r 50 -d 2 --warmup 0.5|"
  )
else
  SUITE=(
    "fanout-100|fanout -n 100 -r 100 -d 10|="
    # Against the floor too: three runs each, alternating (the p99 to 1,000 subscribers moves
    # by half between runs minutes apart on this machine).
    "fanout-1000|fanout -n 1000 -r 100 -d 10|=|3"
    "throughput|throughput -w 4 -n 100 -d 8 --rounds 3|=|1"
    # Creates: no goal, but where the reference fails ("database is locked") and pm must not.
    "throughput-create|throughput -w 4 -n 100 -d 8 --op create|="
    # The reference's slow runs last about a minute each (its broadcast waits on the slow
    # consumer until its 30 s handler timeout), so it gets three rounds.
    "slow-consumer|slow-consumer -n 100 -r 500 -d 12 --rounds 7|slow-consumer -n 100 -r 500 -d 12 --rounds 3"
    "idle|idle -c $IDLE|="
    # The reference loads the whole project on every create, so seeding it is quadratic:
    # 5,000 items take about two minutes, 50,000 would take hours.
    "growth|growth --sizes 0,10000,50000 --samples 200|growth --sizes 0,5000 --samples 200"
    # Not against the reference: its events carry no seq and it keeps no history to resume.
    "resume-storm|resume-storm -c 1000 -e 1000 -d 10|"
    # Presence is pm's own (the reference has none): 1,000 idle users on one board, then the
    # same with ten of them running their cursor over the cards ten times a second.
    "presence|presence -u 1000 -d 60|"
    "presence-movers|presence -u 1000 -d 30 --movers 10|"
    # The slow consumer against `pm-bench floor-server` (no database, no logic) too: what this
    # machine allows at all, printed beside each goal.
    "floor-slow-consumer|slow-consumer -n 100 -r 500 -d 12 --rounds 5|"
  )
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-bench.XXXXXX")
RESULTS=${PM_BENCH_RESULTS:-$WORK/results}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server, start_floor, stop_server (they use SERVER_BIN, BENCH, SERVER_PID, PORT).
# shellcheck source=scripts/bench-servers.sh
. "$ROOT/scripts/bench-servers.sh"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date +%s)
COMMANDS=()
FILES=()

# One run: $1 = pm, floor or reference, $2 = the result's name, the rest pm-bench's arguments.
run_one() {
  local server=$1 name=$2
  shift 2
  local label=()
  case "$server" in
    pm) start_server "$WORK/data-$name" ;;
    floor) start_floor "$WORK/data-$name"; label=(--label floor) ;;
    reference) start_reference "$WORK/data-$name"; label=(--label reference --reference) ;;
  esac
  echo "== $name: pm-bench ${label[*]} $*" >&2
  "$BENCH" --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" "${label[@]}" --json "$RESULTS/$name.json" "$@"
  COMMANDS+=("pm-bench --url http://127.0.0.1:\$PORT --server-pid \$PID ${label[*]:+${label[*]} }--json $name.json $*")
  FILES+=("$RESULTS/$name.json")
  stop_server
}

PAIRS=0
# $1 = name, $2 = runs, the rest pm-bench's arguments: pm and the floor server in turn, the
# order flipped every run (pm first, then the floor first, ...), so drift falls on both alike.
run_with_floor() {
  local name=$1 runs=$2 i suffix
  shift 2
  for i in $(seq 1 "$runs"); do
    suffix=""
    [ "$runs" -gt 1 ] && suffix="-$i"
    if [ $((i % 2)) = 1 ]; then
      run_one pm "$name$suffix" "$@"
      run_one floor "floor-$name$suffix" "$@"
    else
      run_one floor "floor-$name$suffix" "$@"
      run_one pm "$name$suffix" "$@"
    fi
  done
}

for entry in "${SUITE[@]}"; do
  IFS='|' read -r name args reference_args floor_runs <<<"$entry"
  [ "$reference_args" = "=" ] && reference_args=$args
  # shellcheck disable=SC2206 # the arguments are words
  args=($args)
  # shellcheck disable=SC2206
  reference_args=($reference_args)
  if [ -n "$floor_runs" ]; then
    run_with_floor "$name" "$floor_runs" "${args[@]}"
    if [ "${#reference_args[@]}" -gt 0 ] && [ -z "$REFERENCE_NOTE" ]; then
      run_one reference "reference-$name" "${reference_args[@]}"
    fi
  elif [ "${name#floor-}" != "$name" ]; then
    run_one floor "$name" "${args[@]}"
  elif [ "${#reference_args[@]}" = 0 ] || [ -n "$REFERENCE_NOTE" ]; then
    run_one pm "$name" "${args[@]}"
  elif [ $((PAIRS % 2)) = 0 ]; then
    run_one pm "$name" "${args[@]}"
    run_one reference "reference-$name" "${reference_args[@]}"
    PAIRS=$((PAIRS + 1))
  else
    run_one reference "reference-$name" "${reference_args[@]}"
    run_one pm "$name" "${args[@]}"
    PAIRS=$((PAIRS + 1))
  fi
done
# Opening a big board: the real `pm board` in tmux against a fresh server (start-up, memory,
# key to screen; see scripts/bench-board.py). pm only: the reference has no terminal board.
if [ "$QUICK" = 1 ]; then
  BOARD_ARGS=(--items 2000 --keys-items 500 --runs 1 --presses 3)
else
  BOARD_ARGS=(--items 50000 --keys-items 5000 --runs 3 --presses 10)
fi
if command -v tmux >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
  start_server "$WORK/data-board"
  echo "== board: scripts/bench-board.py ${BOARD_ARGS[*]}" >&2
  python3 "$ROOT/scripts/bench-board.py" --server "http://127.0.0.1:$PORT" \
    --pm "$TARGET_DIR/release/pm" "${BOARD_ARGS[@]}" --json "$RESULTS/board.json"
  COMMANDS+=("scripts/bench-board.py --server http://127.0.0.1:\$PORT --pm pm ${BOARD_ARGS[*]} --json board.json")
  FILES+=("$RESULTS/board.json")
  stop_server
else
  echo "warning: tmux or python3 missing: the board scenario is left out" >&2
fi
ELAPSED=$(( $(date +%s) - STARTED ))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Changes other than the report itself (which is being rewritten) make the commit inexact.
CHANGED=$(git status --porcelain --untracked-files=no 2>/dev/null | awk '{print $2}' | grep -vxF "$OUT" || true)
DIRTY=""
if [ -n "$CHANGED" ]; then DIRTY=" (with uncommitted changes)"; fi

{
  echo "# pm benchmarks"
  echo
  echo "Generated by \`scripts/bench.sh$([ "$QUICK" = 1 ] && echo ' --quick')\` on $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "at commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$DIRTY,"
  echo "server binary \`${SERVER_BIN#"$ROOT/"}\`. The suite took ${ELAPSED} s."
  echo "Every figure comes from one run of pm-bench, which speaks only the public protocol"
  echo "(WebSocket protobuf + REST) to a fresh local pm-server per scenario. The runs marked floor"
  echo "talk to \`pm-bench floor-server\` instead: the same protocol answered from memory with no"
  echo "database and no checks, i.e. what this machine allows before any server logic runs."
  if [ -z "$REFERENCE_NOTE" ]; then
    echo "The runs marked reference talk to the reference's own server (\`bab-pm-server\`, the"
    echo "Blazor Agile Board's, from \`${REFERENCE_BIN#"$(cd "$ROOT/.." && pwd)/"}\`), run back to back with pm's, alternating"
    echo "which goes first; its events carry no seq, so pm-bench tells them apart by work item id"
    echo "and title there (see \"The reference beside pm\" below)."
  else
    echo "No reference runs: $REFERENCE_NOTE ($REFERENCE_BIN)."
  fi
  echo
  echo "## Machine"
  echo
  echo '```'
  echo "CPU:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) CPUs as seen by nproc)"
  echo "kernel:  $(uname -srm)"
  echo "ulimit -n: $FD_LIMIT"
  echo "load average before: $LOAD_BEFORE, after: $LOAD_AFTER"
  free -h
  echo '```'
  echo
  echo "The machine is shared and noisy: other work (compilers, tests) runs on the same 2 CPUs,"
  echo "the load generator runs there too, and the virtual CPUs' speed drifts. Each live scenario"
  echo "reports how much CPU the server, pm-bench and *other processes* used during the run, and"
  echo "how much the hypervisor *stole* for other virtual machines (from /proc). Scenarios that load the machine near saturation (fan-out to 1,000 subscribers, the"
  echo "slow consumer at 500/s) vary by up to 10x between runs of the same binary, throughput by"
  echo "up to 2x between runs minutes apart (the same work then takes twice the CPU time); idle"
  echo "memory and growth repeat within about 20 %. Comparisons are made within one run where"
  echo "possible (growth interleaves its two projects; slow-consumer alternates its runs ABBA and"
  echo "takes the median of seven rounds; throughput runs three times and shows the median run;"
  echo "fan-out to 1,000 runs three times against pm and three against the floor server, alternating,"
  echo "and each goal shows the run with the median p99; \"Against the floor\" sets those side by side)."
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "ulimit -n \$(ulimit -Hn)"
  echo "export PM_RATE_LIMIT_PER_SEC=100000000 PM_RATE_LIMIT_BURST=100000000 PM_REST_RATE_LIMIT_PER_SEC=100000000 PM_REST_RATE_LIMIT_BURST=100000000 PM_MAX_HTTP_CONNECTIONS_PER_IP=100000 PM_SERVER_MAX_CONNECTIONS=100000"
  echo "pm-server --data-dir \$(mktemp -d) --port 0 &    # one fresh server per scenario; port from server.json"
  echo "pm-bench floor-server &                         # instead, for the runs labelled floor; port printed"
  if [ -z "$REFERENCE_NOTE" ]; then
    echo "(D=\$(mktemp -d); cd \$D && HOME=\$D PM_SERVER_HOST=127.0.0.1 PM_SERVER_PORT=0 PM_LOG_LEVEL=warn PM_RATE_LIMIT_MAX_REQUESTS=10000 PM_RATE_LIMIT_WINDOW_SECS=1 PM_SERVER_MAX_CONNECTIONS=100000 bab-pm-server &)   # for the runs labelled reference; port in \$D/.pm/server.json"
  fi
  for c in "${COMMANDS[@]}"; do echo "$c"; done
  echo "pm-bench summarize *.json"
  echo '```'
  echo
  echo "## Goals"
  echo
  "$BENCH" summarize ${REFERENCE_NOTE:+--reference-absent "$REFERENCE_NOTE"} "${FILES[@]}" | sed 's/^### /### Scenario: /'
  if [ -f "$NOTES" ]; then
    echo
    cat "$NOTES"
  fi
} >"$OUT"
echo "wrote $OUT (${ELAPSED} s)" >&2
