#!/usr/bin/env bash
# Replays every attack of the security review against live pm-servers and prints
# "N attacks, M succeeded"; exits 1 when any succeeded (CI runs it).
#
#   scripts/attack.sh            # debug binaries (reuses the test build)
#   PM_ATTACK_PROFILE=release scripts/attack.sh
#   PM_ATTACK_SERVER=/path/to/an/older/pm-server scripts/attack.sh   # what an older build lets through
#
# The protocol-level attacks are `pm-attack` (bench/src/attack): a token-mode server with Alice
# and Mallory, a desktop-mode server with short timeouts, and a server whose data directory is a
# 3 MB tmpfs (in a mount namespace of its own: `unshare`, from util-linux). The rest are checked
# here, on the processes and files themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo curl unshare; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool not found (cargo: https://rustup.rs; curl and unshare: your distribution's curl and util-linux packages)" >&2
    exit 1
  fi
done

PROFILE=${PM_ATTACK_PROFILE:-dev}
# Where cargo puts the binaries: CARGO_TARGET_DIR when set, else target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$PROFILE" in
  dev) BIN=$TARGET_DIR/debug ;;
  *) BIN=$TARGET_DIR/$PROFILE ;;
esac
echo "== building pm-server, pm-attack and pm ($PROFILE)"
cargo build --locked --profile "$PROFILE" -p pm-server -p pm-bench -p pm --bins
SERVER=${PM_ATTACK_SERVER:-$BIN/pm-server}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

TOTAL=0
SUCCEEDED=0
check() { # name, outcome (refused|SUCCEEDED), detail
  TOTAL=$((TOTAL + 1))
  if [ "$2" = refused ]; then
    printf 'refused    %s: %s\n' "$1" "$3"
  else
    SUCCEEDED=$((SUCCEEDED + 1))
    printf 'SUCCEEDED  %s: %s\n' "$1" "$3"
  fi
}

# start NAME DATA_DIR [pm-server args...]: starts a server, sets PORT and PID.
start() {
  local name=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  "$SERVER" --data-dir "$dir" --port 0 "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  await_port "$name"
}

# listening_port LOG: the port of the server's "listening" line (its colours stripped).
listening_port() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" 2>/dev/null | grep -o 'listening addr=[^ ]*' | head -1 | sed 's/.*://' || true
}

# await_port NAME: reads the port from the server's "listening" log line.
await_port() {
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(listening_port "$WORK/$1.log")
    [ -n "$PORT" ] && return 0
    if ! kill -0 "$PID" 2>/dev/null; then
      echo "error: the $1 server did not start:" >&2
      cat "$WORK/$1.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: the $1 server did not start in 30 s" >&2
  exit 1
}

stop() { # pid: SIGTERM, then wait
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

# run_attacks KIND ARGS...: runs `pm-attack KIND ARGS...`, adds its counts.
run_attacks() {
  local out
  out=$("$BIN/pm-attack" --url "http://127.0.0.1:$PORT" "$@" 2>&1) || true
  printf '%s\n' "$out" | grep -v ' attacks, .* succeeded$' || true
  local line n m
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ attacks, [0-9]+ succeeded$' | tail -1 || true)
  if [ -z "$line" ]; then
    check "pm-attack $1" SUCCEEDED "did not run to the end"
    return
  fi
  n=${line%% attacks*}
  m=${line#*, }
  m=${m%% succeeded}
  TOTAL=$((TOTAL + n))
  SUCCEEDED=$((SUCCEEDED + m))
}

echo "== token mode: Mallory has a token and no membership"
SECRET="attack-script-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export PM_AUTH_JWT_SECRET=$SECRET
ALICE=0000a11c-0000-4000-8000-00000000a11c
MALLORY=0000ba11-0000-4000-8000-00000000ba11
ALICE_TOKEN=$("$SERVER" issue-token --user-id "$ALICE")
MALLORY_TOKEN=$("$SERVER" issue-token --user-id "$MALLORY")
# Newer settings go by environment, which an older server (PM_ATTACK_SERVER) ignores.
PM_REST_RATE_LIMIT_PER_SEC=200 PM_REST_RATE_LIMIT_BURST=400 start team "$WORK/team" --auth token
PM_ATTACK_ALICE_TOKEN=$ALICE_TOKEN PM_ATTACK_MALLORY_TOKEN=$MALLORY_TOKEN \
  run_attacks team --alice "$ALICE" --mallory "$MALLORY"
stop "$PID"
if out=$("$SERVER" issue-token --user-id "$ALICE" --ttl-days 999999999999 2>&1); then
  check "low. issue-token --ttl-days wraps to a token that expired long ago" SUCCEEDED "printed a token"
else
  check "low. issue-token --ttl-days wraps to a token that expired long ago" refused "$(printf '%s' "$out" | head -1)"
fi
unset PM_AUTH_JWT_SECRET


echo "== desktop mode, short timeouts"
DESK="$WORK/desktop"
PM_HEADER_READ_TIMEOUT_SECS=2 PM_WS_FRAME_TIMEOUT_SECS=2 PM_REST_RATE_LIMIT_PER_SEC=0 \
  start desktop "$DESK" --send-buffer-bytes 1048576 --rate-limit-per-sec 100000 --rate-limit-burst 100000
run_attacks desktop --header-timeout-secs 2 --frame-timeout-secs 2 --send-buffer-bytes 1048576

# Terminal output: a title with an escape sequence and a bidi override.
PM=("$BIN/pm" --server "http://127.0.0.1:$PORT")
"${PM[@]}" project create --title "Terminal" --key TERM >/dev/null
"${PM[@]}" work-item create --project-id TERM --type task --title $'\e[31mred\e[0m \u202Eevil' >/dev/null
table=$("${PM[@]}" work-item list TERM --format table)
if printf '%s' "$table" | grep -q $'\e\|\u202E'; then
  check "low. --format table prints raw ESC and U+202E from titles" SUCCEEDED "they reach the terminal"
else
  check "low. --format table prints raw ESC and U+202E from titles" refused "shown as placeholders"
fi

stop "$PID"
wal="$DESK/data.db-wal"
if [ -s "$wal" ]; then
  check "low. no WAL checkpoint at shutdown (a copied data.db is not a full backup)" SUCCEEDED "$(stat -c %s "$wal") bytes left in the WAL"
else
  check "low. no WAL checkpoint at shutdown (a copied data.db is not a full backup)" refused "the WAL is empty after a clean stop"
fi

# Mid-file corruption: garbage over a page in the middle of a copy.
CORRUPT="$WORK/corrupt"
mkdir -p "$CORRUPT"
cp "$DESK/data.db" "$CORRUPT/data.db"
pages=$(( $(stat -c %s "$CORRUPT/data.db") / 4096 ))
head -c 4096 /dev/urandom | dd of="$CORRUPT/data.db" bs=4096 seek=$((pages / 2)) conv=notrunc status=none
"$SERVER" --data-dir "$CORRUPT" --port 0 >"$WORK/corrupt.log" 2>&1 &
PID=$!
PIDS+=("$PID")
ready="server refused to start"
for _ in $(seq 1 100); do
  PORT=$(listening_port "$WORK/corrupt.log")
  if [ -n "$PORT" ]; then
    ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ready" || echo none)
    break
  fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
stop "$PID"
if [ "$ready" = 200 ]; then
  check "low. /ready says healthy after mid-file corruption" SUCCEEDED "/ready 200"
else
  check "low. /ready says healthy after mid-file corruption" refused "/ready: $ready"
fi

# Binding every interface in desktop mode.
if timeout 10 "$SERVER" --data-dir "$WORK/wide" --host 0.0.0.0 --port 0 >"$WORK/wide.log" 2>&1; then
  check "5. desktop mode binds 0.0.0.0 without a word" SUCCEEDED "it ran"
else
  code=$?
  if [ "$code" = 124 ]; then
    check "5. desktop mode binds 0.0.0.0 without a word" SUCCEEDED "it served until killed"
  else
    check "5. desktop mode binds 0.0.0.0 without a word" refused "$(grep -o 'allow-remote-desktop' "$WORK/wide.log" | head -1) asked for"
  fi
fi

# A server on every IPv6 (and mapped IPv4) address: local IPv4 callers may administer it.
PM_ALLOW_REMOTE_DESKTOP=true start v6 "$WORK/v6" --host ::
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/admin/checkpoint" || echo none)
stop "$PID"
if [ "$status" = 200 ]; then
  check "low. --host :: refuses local IPv4 callers on /admin" refused "127.0.0.1 may administer ($status)"
else
  check "low. --host :: refuses local IPv4 callers on /admin" SUCCEEDED "/admin answered $status"
fi

echo "== a full disk (a 3 MB tmpfs in a mount namespace of its own)"
DISK="$WORK/disk"
mkdir -p "$DISK"
unshare -rm sh -c 'mount -t tmpfs -o size=3m pm-attack-full "$0" && exec "$1" --data-dir "$0" --port 0' \
  "$DISK" "$SERVER" >"$WORK/disk.log" 2>&1 &
PID=$!
PIDS+=("$PID")
await_port disk
run_attacks disk
stop "$PID"

echo
echo "$TOTAL attacks, $SUCCEEDED succeeded"
[ "$SUCCEEDED" -eq 0 ]
