# Sourced by scripts/bench.sh and scripts/bench-pairs.sh: starting and stopping the servers a
# benchmark runs against. The caller sets SERVER_BIN (a pm-server binary), BENCH (pm-bench) and,
# for start_reference, REFERENCE_BIN; these set SERVER_PID and PORT.
#
# The server's protective limits are raised for the benchmark (they are policy, not capacity):
# see scripts/bench.sh.

# Starts a fresh server in $1 (a new data directory); sets SERVER_PID and PORT.
start_server() {
  local dir=$1
  mkdir -p "$dir"
  PM_LOG=warn PM_RATE_LIMIT_PER_SEC=100000000 PM_RATE_LIMIT_BURST=100000000 \
    PM_REST_RATE_LIMIT_PER_SEC=100000000 PM_REST_RATE_LIMIT_BURST=100000000 \
    PM_MAX_HTTP_CONNECTIONS_PER_IP=100000 PM_SERVER_MAX_CONNECTIONS=100000 \
    "$SERVER_BIN" --data-dir "$dir" --port 0 >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  await_port pm-server "$dir/server.log" \
    sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$dir/server.json"
}

# Starts `pm-bench floor-server` on a free port; sets SERVER_PID and PORT.
start_floor() {
  local dir=$1
  mkdir -p "$dir"
  "$BENCH" floor-server >"$dir/floor.out" 2>&1 &
  SERVER_PID=$!
  await_port "pm-bench floor-server" "$dir/floor.out" \
    sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$dir/floor.out"
}

# Starts the reference's own server ($REFERENCE_BIN, the Blazor Agile Board's pm-server) with
# $1 (a new directory outside any git checkout) as its HOME and working directory: it keeps its
# database in $HOME/.pm, or in <git root>/.pm when started inside a checkout. Its limits are
# raised as pm's are: a burst of 10,000 WebSocket messages per connection (its ceiling; after the
# burst it allows one a window), and connections for the idle run. Sets SERVER_PID and PORT.
start_reference() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if git -C "$dir" rev-parse --show-toplevel >/dev/null 2>&1; then
    echo "error: $dir is inside a git checkout; the reference would keep its data in the checkout" >&2
    exit 1
  fi
  (cd "$dir" && exec env HOME="$dir" PM_SERVER_HOST=127.0.0.1 PM_SERVER_PORT=0 \
    PM_LOG_LEVEL=warn PM_LOG_COLORED=false \
    PM_RATE_LIMIT_MAX_REQUESTS=10000 PM_RATE_LIMIT_WINDOW_SECS=1 \
    PM_SERVER_MAX_CONNECTIONS=100000 PM_VALIDATION_MAX_COMMENT_LENGTH=150000 \
    "$REFERENCE_BIN" >"$dir/server.log" 2>&1) &
  SERVER_PID=$!
  await_port bab-pm-server "$dir/server.log" \
    sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$dir/.pm/server.json"
}

# Waits up to 30 s for the command after the first two arguments to print the port of the
# server just started as $SERVER_PID (its name and log are the first two); sets PORT.
await_port() {
  local name=$1 log=$2
  shift 2
  for _ in $(seq 1 300); do
    PORT=$("$@" 2>/dev/null || true)
    [ -n "$PORT" ] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "error: $name exited; its log:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: $name gave no port within 30 s" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

