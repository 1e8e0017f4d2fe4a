#!/usr/bin/env bash
# The REST API against its own description: schemathesis (a property-based API fuzzer, from
# PyPI) reads /api/v1/openapi.json from a live pm-server and sends every operation valid and
# invalid inputs, in desktop mode and in token mode (as a server admin). It fails on any server
# error (5xx), any answer that does not match the description (schema, content type), and any
# network failure.
#
#   scripts/schemathesis.sh                 # 100 examples per operation and phase, both modes
#   PM_SCHEMATHESIS_EXAMPLES=200 scripts/schemathesis.sh
#   PM_SCHEMATHESIS_SEED=random scripts/schemathesis.sh   # another seed than the pinned one
#
# Needs python3 with venv; the first run installs schemathesis into target/schemathesis/venv.
# POST /admin/shutdown is left out (it would stop the server under test).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${PM_SCHEMATHESIS_EXAMPLES:-100}
SEED=${PM_SCHEMATHESIS_SEED:-20261205}
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
# The venv, and schemathesis' own cache (.schemathesis/, in the directory it runs in).
HOME_DIR=$TARGET/schemathesis
VENV=$HOME_DIR/venv
SECRET=schemathesis-run-secret-of-at-least-32-characters

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is needed (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || {
    echo "error: python3 -m venv failed (apt-get install python3-venv)" >&2
    exit 1
  }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== cargo build -p pm-server"
cargo build -q -p pm-server
SERVER=$TARGET/debug/pm-server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts pm-server on a fresh data directory with "$@"; sets BASE to its URL.
start_server() {
  local dir
  dir=$(mktemp -d "$WORK/data.XXXX")
  PM_LOG=warn "$SERVER" --data-dir "$dir" --port 0 --rest-rate-limit-per-sec 0 "$@" \
    >"$dir/server.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    if [ -s "$dir/server.json" ]; then
      BASE="http://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$dir/server.json")"
      return 0
    fi
    sleep 0.05
  done
  echo "error: pm-server did not start; its log:" >&2
  cat "$dir/server.log" >&2
  exit 1
}

# Runs schemathesis against the server at BASE with extra options "$@".
fuzz() {
  local seed=()
  [ "$SEED" = random ] || seed=(--seed "$SEED")
  (cd "$HOME_DIR" && "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --max-examples "$EXAMPLES" "${seed[@]}" \
    --exclude-path /admin/shutdown \
    --request-timeout 10 --no-color --warnings off "$@")
}

status=0
echo "== desktop mode"
start_server
fuzz | tee "$WORK/desktop.txt" || status=1

echo "== token mode (a server admin's token)"
start_server --auth token --jwt-secret "$SECRET"
TOKEN=$(PM_LOG=off "$SERVER" --jwt-secret "$SECRET" issue-token \
  --user-id 5c1e7a9d-2b4f-4c6e-9a8b-1d2e3f4a5b6c --admin)
fuzz -H "Authorization: Bearer $TOKEN" | tee "$WORK/token.txt" || status=1

echo "== schemathesis $SCHEMATHESIS_VERSION, $EXAMPLES examples, seed $SEED"
for mode in desktop token; do
  printf '%-8s %s; %s\n' "$mode" \
    "$(grep -Eo 'Tested: [0-9]+' "$WORK/$mode.txt" | head -1) operations" \
    "$(grep -E '^ *[0-9]+ generated' "$WORK/$mode.txt" | head -1 | sed 's/^ *//')"
done
[ "$status" = 0 ] && echo "schemathesis: no failures" || echo "schemathesis: FAILURES (see above)" >&2
exit "$status"
