#!/usr/bin/env bash
# Alternating before/after pairs: runs the same pm-bench scenarios against two pm-server
# binaries in turn (A then B, then B then A, …), a fresh server and data directory per run, so
# that the machine's drift falls on both alike. Prints each run's figures and, per pair, the
# goals table of `pm-bench compare`.
#
#   scripts/bench-pairs.sh OLD_PM_SERVER NEW_PM_SERVER [PAIRS]     (PAIRS defaults to 3)
#
# Environment:
#   PM_PAIRS_SCENARIOS   "name|pm-bench arguments" entries separated by ';'
#                        (default: throughput with 100 subscribers, fan-out to 1,000)
#   PM_BENCH_RESULTS=dir keep each run's JSON there
#   CARGO_TARGET_DIR     where pm-bench is built (release)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ $# -lt 2 ]; then sed -n '2,13p' "$0"; exit 2; fi
abs() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
OLD=$(abs "$1")
NEW=$(abs "$2")
PAIRS=${3:-3}
for bin in "$OLD" "$NEW"; do
  [ -x "$bin" ] || { echo "error: $bin is not an executable pm-server" >&2; exit 2; }
done
SCENARIOS=${PM_PAIRS_SCENARIOS:-"throughput|throughput -w 4 -n 100 -d 8 --rounds 1;fanout-1000|fanout -n 1000 -r 100 -d 10"}

cargo build --release --locked -p pm-bench >&2
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BENCH="$TARGET_DIR/release/pm-bench"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-pairs.XXXXXX")
RESULTS=${PM_BENCH_RESULTS:-$WORK/results}
mkdir -p "$RESULTS"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK/data-"*
}
trap cleanup EXIT
# shellcheck source=scripts/bench-servers.sh
. "$ROOT/scripts/bench-servers.sh"

IFS=';' read -r -a ENTRIES <<<"$SCENARIOS"
echo "A = $OLD"
echo "B = $NEW"
for pair in $(seq 1 "$PAIRS"); do
  if [ $((pair % 2)) = 1 ]; then ORDER="A B"; else ORDER="B A"; fi
  for side in $ORDER; do
    if [ "$side" = A ]; then SERVER_BIN=$OLD; else SERVER_BIN=$NEW; fi
    for entry in "${ENTRIES[@]}"; do
      name=${entry%%|*}
      args=${entry#*|}
      start_server "$WORK/data-$side-$name-$pair"
      echo "== pair $pair, $side: $name: pm-bench $args"
      # shellcheck disable=SC2086
      "$BENCH" --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --json "$RESULTS/$side-$name-$pair.json" $args
      stop_server
    done
  done
  echo "== pair $pair: A → B"
  A_FILES=() B_FILES=()
  for entry in "${ENTRIES[@]}"; do
    A_FILES+=("$RESULTS/A-${entry%%|*}-$pair.json")
    B_FILES+=("$RESULTS/B-${entry%%|*}-$pair.json")
  done
  "$BENCH" compare --before "${A_FILES[@]}" --after "${B_FILES[@]}"
done
echo "results: $RESULTS"
