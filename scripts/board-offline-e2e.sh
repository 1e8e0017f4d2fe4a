#!/usr/bin/env bash
# End-to-end test of working offline on `pm board` (issue 19), in real terminals: a pm-server of
# its own, alice's board connected to it directly and bob's through a TCP proxy that is cut and
# restored (scripts/cut-proxy.py), keys sent with tmux, screens read with `tmux capture-pane`.
#
#   1. cut      bob's board says it is reconnecting
#   2. edit     bob moves OFF-1 to To Do (commutes with alice's priority change of it) and
#               renames OFF-2, which alice renames too: his cards show ⇡ pending, his status
#               bar "2 pending", and his queue is on disk; his board is killed (SIGKILL) and
#               started again, still offline: the 2 pending changes are back
#   3. restore  bob's board replays: the move lands (alice sees OFF-1 in To Do, still with her
#               priority), the rename is refused into his inbox ("1 conflict (I)")
#   4. inbox    I shows theirs (alice's title, by alice) and mine; m keeps mine: the server and
#               alice's board get bob's title, and his queue file is gone
#
#   scripts/board-offline-e2e.sh   build (dev profile), run, exit 1 on the first failure
#
# Environment: PM_E2E_PROFILE (cargo profile, default dev), PM_E2E_TIMEOUT (seconds each
# expected screen or change may take, default 10). Needs tmux and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${PM_E2E_PROFILE:-dev}
TIMEOUT=${PM_E2E_TIMEOUT:-10}

say() { printf '%s\n' "$*"; }
die() {
  printf 'board-offline-e2e: %s\n' "$*" >&2
  exit 1
}

command -v tmux >/dev/null 2>&1 || die "tmux is not installed (apt-get install tmux / brew install tmux)"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed (apt-get install python3)"

target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$ROOT/$target" ;; esac
if [ "$PROFILE" = dev ]; then BIN="$target/debug"; else BIN="$target/$PROFILE"; fi
if [ -z "${PM_E2E_BUILT:-}" ] && command -v cargo >/dev/null 2>&1; then
  say "== building pm and pm-server (cargo profile $PROFILE)"
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p pm -p pm-server </dev/null) ||
    die "the build failed"
fi
[ -x "$BIN/pm" ] && [ -x "$BIN/pm-server" ] || die "no pm and pm-server binaries in $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-board-offline-e2e.XXXXXX")
SOCK="pm-board-offline-e2e-$$"
SERVER_PID=""
PROXY_PID=""
PASSED=0
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  for pid in "$PROXY_PID" "$SERVER_PID"; do
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$PASSED" = 1 ]; then rm -rf "$WORK"; else say "its files are kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
started=$(date +%s)

# ---- the server, the proxy and the data ----------------------------------------------------

"$BIN/pm-server" --host 127.0.0.1 --port 0 --data-dir "$WORK" --database data.db \
  </dev/null >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do
  [ -s "$WORK/server.json" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "pm-server exited at start-up: $(tail -n 20 "$WORK/server.log")"
  sleep 0.1
done
[ -s "$WORK/server.json" ] || die "pm-server wrote no server.json within 20 s"
PORT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])' <"$WORK/server.json")
URL="http://127.0.0.1:$PORT"
CUT="$WORK/cut"
python3 "$ROOT/scripts/cut-proxy.py" "$PORT" "$WORK/proxy.port" "$CUT" 2>"$WORK/proxy.log" &
PROXY_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/proxy.port" ] && break
  sleep 0.1
done
[ -s "$WORK/proxy.port" ] || die "the proxy did not start: $(cat "$WORK/proxy.log")"
PROXIED="http://127.0.0.1:$(cat "$WORK/proxy.port")"
say "== pm-server at $URL, bob's way to it: $PROXIED"

pmc() { env -u PM_USER_ID -u PM_TOKEN "$BIN/pm" --server "$URL" "$@" </dev/null; }
field() {
  pmc work-item get "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["work_item"][sys.argv[1]])' "$2"
}
pmc project create --title "Offline" --key OFF >/dev/null
pmc work-item create --project-id OFF --type task --title "Commuting card" >/dev/null
pmc work-item create --project-id OFF --type task --title "Contested title" >/dev/null

# ---- two boards in tmux, each with its own data directory (where the queue is kept) ----------

printf 'set -g remain-on-exit on\nset -g history-limit 100\n' >"$WORK/tmux.conf"
tm() { tmux -u -L "$SOCK" -f "$WORK/tmux.conf" "$@"; }
board_cmd() {
  local server=$URL
  [ "$1" = bob ] && server=$PROXIED
  printf '%s' "env -u PM_USER_ID -u PM_TOKEN -u PM_SERVER XDG_DATA_HOME=$WORK/$1-data TERM=xterm-256color $BIN/pm board --server $server --name $1 --project OFF"
}
for who in alice bob; do
  mkdir -p "$WORK/$who-data"
  tm new-session -d -s "$who" -x 120 -y 40 "$(board_cmd "$who")"
done

screen() { tm capture-pane -p -t "$1"; }
fail() {
  say "FAILED: $*"
  for who in alice bob; do
    say "---- $who's board ----"
    screen "$who" || true
  done
  say "---- server log ----"
  tail -n 20 "$WORK/server.log" || true
  exit 1
}
wait_screen() {
  local deadline=$((SECONDS + TIMEOUT))
  until screen "$1" | grep -qF -- "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$3: $1's board never showed \"$2\""
    sleep 0.1
  done
}
wait_gone() {
  local deadline=$((SECONDS + TIMEOUT))
  while screen "$1" | grep -qF -- "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$3: $1's board still shows \"$2\""
    sleep 0.1
  done
}
wait_field() {
  local deadline=$((SECONDS + TIMEOUT)) got=""
  while got=$(field "$1" "$2") && [ "$got" != "$3" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$4: $1's $2 is \"$got\", not \"$3\""
    sleep 0.1
  done
}
keys() { tm send-keys -t "$@"; }

for who in alice bob; do
  wait_screen "$who" "OFF-2" "$who's board opens"
  wait_screen "$who" "● connected" "$who's board connects"
done

# ---- 1. cut ----------------------------------------------------------------------------------
say "== 1. bob's link is cut"
touch "$CUT"
wait_screen bob "reconnecting" "bob's board notices"
say "   bob's board is reconnecting"

# ---- 2. edits on both sides ------------------------------------------------------------------
say "== 2. edits on both boards"
# Both boards start on Backlog's first card, OFF-1. Bob moves it to To Do (the board follows
# it there), goes back to Backlog, where OFF-2 is now first, and renames it.
keys bob L
wait_screen bob "To Do 1" "bob's move shows at once"
keys bob h
keys bob e
wait_screen bob "Edit title" "bob's edit opens"
keys bob -l " by bob"
wait_screen bob "Contested title by bob" "bob types"
keys bob Enter
wait_gone bob "Edit title" "bob's rename is queued"
wait_screen bob "2 pending" "bob's status bar counts the queued changes"
wait_screen bob "⇡ pending" "bob's cards are marked"
ls "$WORK"/bob-data/pm/offline-*.json >/dev/null 2>&1 || fail "bob's queue is not on disk"
# Alice raises OFF-1's priority (another field: commutes with bob's move) and renames OFF-2.
keys alice p
wait_field OFF-1 priority high "alice's priority change"
keys alice j
keys alice e
wait_screen alice "Edit title" "alice's edit opens"
keys alice -l " by alice"
wait_screen alice "Contested title by alice" "alice types"
keys alice Enter
wait_field OFF-2 title "Contested title by alice" "alice's rename"
[ "$(field OFF-1 status)" = backlog ] || fail "bob's offline move reached the server while cut"
say "   bob: 2 pending, on disk; alice's changes saved"

# ---- 2b. bob's board is killed and started again, still cut off --------------------------------
say "== 2b. bob's board is killed (SIGKILL) and started again while still offline"
bob_pid=$(tm display-message -p -t bob '#{pane_pid}')
kill -KILL "$bob_pid"
tm respawn-pane -k -t bob "$(board_cmd bob)"
wait_screen bob "2 pending" "bob's queue is back after the kill"
say "   the 2 pending changes came back from disk"

# ---- 3. restore ------------------------------------------------------------------------------
say "== 3. bob's link is back"
rm -f "$CUT"
wait_screen bob "● connected" "bob's board reconnects"
wait_field OFF-1 status todo "bob's move is replayed"
[ "$(field OFF-1 priority)" = high ] || fail "bob's move undid alice's priority"
wait_screen alice "To Do 1" "alice sees OFF-1 in To Do"
wait_screen bob "1 conflict (I)" "bob's rename went to his inbox"
wait_gone bob "pending" "nothing is left pending"
[ "$(field OFF-2 title)" = "Contested title by alice" ] || fail "bob's rename overwrote alice's"
say "   the move landed, the rename is in bob's inbox"

# ---- 4. the inbox ----------------------------------------------------------------------------
say "== 4. bob's inbox: keep mine"
keys bob I
wait_screen bob "Inbox · 1 conflict" "the inbox opens"
wait_screen bob "theirs by alice" "the inbox says who made theirs"
wait_screen bob "theirs Contested title by alice" "the inbox shows alice's title"
wait_screen bob "mine   Contested title by bob" "the inbox shows bob's title"
keys bob m
wait_field OFF-2 title "Contested title by bob" "keep mine saves bob's title"
wait_screen alice "Contested title by bob" "alice's board shows bob's title"
wait_gone bob "conflict (I)" "the inbox is empty"
deadline=$((SECONDS + TIMEOUT))
while ls "$WORK"/bob-data/pm/offline-*.json >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || fail "bob's queue file stays after everything was sent"
  sleep 0.1
done
say "   kept mine: alice sees bob's title"

PASSED=1
say "== board offline e2e passed in $(($(date +%s) - started)) s (after the build)"
