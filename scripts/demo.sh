#!/usr/bin/env bash
# The two-window demo: two live `pm board`s side by side (alice and bob) and a shell with `pm`
# (carol), in tmux, against a pm-server of its own. Every change anyone makes shows on both boards.
#
#   scripts/demo.sh            build, start the server, seed the demo project once, open tmux
#   scripts/demo.sh --tour     the same, with a scripted walk-through driven from the shell pane
#   scripts/demo.sh --check    headless end-to-end check of the tour (CI); exit 1 on failure
#   scripts/demo.sh --stop     stop the demo's server and close its tmux session
#   scripts/demo.sh --fresh    (with the default mode or --tour) throw the demo's data away first
#
# Environment: PM_DEMO_PROFILE (cargo profile, default release; dev reuses the test build),
# PM_DEMO_DIR (the demo's data directory, default <repo>/.pm-demo), PM_DEMO_DEADLINE (--check:
# seconds each change may take to show on both boards, default 5).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRIVER="$ROOT/scripts/demo_driver.py"
PROFILE=${PM_DEMO_PROFILE:-release}
DEMO_DIR=${PM_DEMO_DIR:-$ROOT/.pm-demo}
SESSION=pm-demo
PROJECT_KEY=PM
# The demo's users. Fixed ids, so a rerun and the CLI agree on who is who.
ALICE=a11ce000-0000-4000-a000-000000000001
BOB=b0b00000-0000-4000-a000-000000000002
CAROL=ca201000-0000-4000-a000-000000000003
SEEDED_ITEMS=18

say() { printf '%s\n' "$*"; }
err() { printf 'demo: %s\n' "$*" >&2; }
die() {
  err "$*"
  exit 1
}

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

MODE=demo
FRESH=0
for arg in "$@"; do
  case "$arg" in
    --tour) MODE=tour ;;
    --check) MODE=check ;;
    --stop) MODE=stop ;;
    --fresh) FRESH=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $arg"
      ;;
  esac
done
if [ "$FRESH" = 1 ] && { [ "$MODE" = check ] || [ "$MODE" = stop ]; }; then
  die "--fresh goes with the default mode or --tour (--check always starts fresh)"
fi

# ---- tools ---------------------------------------------------------------------------------

# `with_timeout SECS cmd…`: coreutils timeout when there is one.
with_timeout() {
  local secs=$1
  shift
  if command -v timeout >/dev/null 2>&1; then
    timeout "$secs" "$@"
  else
    "$@"
  fi
}

# `need TOOL PACKAGE`: the tool, or how to install it. Under CI as root, --check installs it.
need() {
  local tool=$1 package=$2
  command -v "$tool" >/dev/null 2>&1 && return 0
  if [ "$MODE" = check ] && [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null 2>&1; then
    say "== $tool is not installed; installing it with apt-get (CI)"
    export DEBIAN_FRONTEND=noninteractive
    with_timeout 300 apt-get update -qq </dev/null >/dev/null &&
      with_timeout 300 apt-get install -y -qq "$package" </dev/null >/dev/null ||
      die "could not install $package with apt-get"
    command -v "$tool" >/dev/null 2>&1 && return 0
  fi
  err "$tool is not installed, and the demo needs it."
  err "Install it, then run this again:"
  err "  Debian/Ubuntu: sudo apt-get install $package"
  err "  Fedora:        sudo dnf install $package"
  err "  macOS:         brew install $tool"
  exit 1
}

target_dir() {
  local dir=${CARGO_TARGET_DIR:-target}
  case "$dir" in /*) ;; *) dir="$ROOT/$dir" ;; esac
  if [ "$PROFILE" = dev ]; then
    printf '%s/debug' "$dir"
  else
    printf '%s/%s' "$dir" "$PROFILE"
  fi
}
BIN_DIR=$(target_dir)
PM_BIN="$BIN_DIR/pm"
SERVER_BIN="$BIN_DIR/pm-server"

build() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$PM_BIN" ] && [ -x "$SERVER_BIN" ]; then
      err "cargo not found; using the binaries already in $BIN_DIR"
      return
    fi
    die "cargo not found. Install Rust from https://rustup.rs and run this again."
  fi
  say "== Building pm-server and pm (cargo profile $PROFILE)"
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p pm-server -p pm </dev/null) ||
    die "the build failed"
}

# ---- the server ----------------------------------------------------------------------------

json_field() { # json_field NAME < json: the first string or number value of "NAME"
  # (sed reads to the end, so nothing in the pipe dies of SIGPIPE under pipefail)
  grep -o "\"$1\": *\"\{0,1\}[^\",}]*" | sed -n "1s/\"$1\": *\"\{0,1\}//p"
}

# The pid of the pm-server serving DIR, if it runs (from DIR/server.json).
server_pid() {
  local dir=$1 pid args
  [ -f "$dir/server.json" ] || return 1
  pid=$(json_field pid <"$dir/server.json")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  else
    args=$(ps -p "$pid" -o args= 2>/dev/null) || return 1
  fi
  case "$args" in *pm-server*"$dir"*) printf '%s' "$pid" ;; *) return 1 ;; esac
}

server_url() {
  local port
  port=$(json_field port <"$1/server.json")
  printf 'http://127.0.0.1:%s' "$port"
}

# start_server DIR: starts pm-server on port 0 with DIR as its data directory, waits for the
# port file. Sets SERVER_PID and URL.
start_server() {
  local dir=$1 log=$1/server.log waited=0
  rm -f "$dir/server.json"
  printf '\n==== %s: scripts/demo.sh starts pm-server\n' "$(date)" >>"$log"
  NO_COLOR=1 nohup "$SERVER_BIN" --host 127.0.0.1 --port 0 --data-dir "$dir" --database data.db \
    </dev/null >>"$log" 2>&1 &
  SERVER_PID=$!
  while ! [ -s "$dir/server.json" ] || [ "$(json_field pid <"$dir/server.json")" != "$SERVER_PID" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 30 "$log" >&2 || true
      die "pm-server exited at start-up (log: $log)"
    fi
    if [ "$waited" -ge 200 ]; then # 20 s
      tail -n 30 "$log" >&2 || true
      die "pm-server did not write $dir/server.json within 20 s (log: $log)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  URL=$(server_url "$dir")
}

stop_server() { # stop_server PID
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Records a display name for a user id: the server takes it from a WebSocket upgrade's
# `?name=` (that is how the boards announce theirs); the connection is closed at once.
register_name() { # register_name URL UUID NAME
  local port=${1##*:}
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
    printf 'GET /ws?user_id=%s&name=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: cG0tZGVtby1uYW1lLWtleQ==\r\n\r\n' "$2" "$3" >&3
    IFS= read -r -t 5 _ <&3 || true
    exec 3>&-
  ) 2>/dev/null || true
}

# ---- seeding -------------------------------------------------------------------------------

pmu() { # pmu USER-ID pm-args…: the CLI as that user
  local user=$1
  shift
  with_timeout 30 "$PM_BIN" --server "$URL" --user-id "$user" "$@" </dev/null
}

# item USER TYPE STATUS PRIORITY POINTS ASSIGNEE(-) SPRINT(0/1) PARENT(-) TITLE [DESCRIPTION]
# Prints the new item's display key.
item() {
  local user=$1 type=$2 status=$3 priority=$4 points=$5 assignee=$6 in_sprint=$7 parent=$8
  local title=$9 description=${10:-} out key
  local args=(work-item create --project-id "$PROJECT_KEY" --type "$type" --title "$title"
    --status "$status" --priority "$priority")
  [ "$parent" = - ] || args+=(--parent-id "$parent")
  [ -z "$description" ] || args+=(--description "$description")
  out=$(pmu "$user" "${args[@]}") || return 1
  key=$(json_field display_key <<<"$out")
  local update=(work-item update "$key" --story-points "$points" --expected-version 1)
  [ "$assignee" = - ] || update+=(--assignee-id "$assignee")
  [ "$in_sprint" = 0 ] || update+=(--sprint-id "$SPRINT_ID")
  pmu "$user" "${update[@]}" >/dev/null || return 1
  printf '%s' "$key"
}

comment() { # comment USER KEY TEXT
  pmu "$1" comment create --work-item-id "$2" --content "$3" >/dev/null
}

seed() {
  local now e1 e2 e3 s1 s2 s3 s4 s5 s6 t
  now=$(date +%s)
  pmu "$CAROL" project create --key "$PROJECT_KEY" --title "Mobile Banking App" \
    --description "The demo project of scripts/demo.sh" >/dev/null
  SPRINT_ID=$(pmu "$CAROL" sprint create --project-id "$PROJECT_KEY" --name "Sprint 12" \
    --start-date $((now - 7 * 86400)) --end-date $((now + 7 * 86400)) \
    --goal "Sign-up and payments in beta" | json_field id)
  pmu "$CAROL" sprint update "$SPRINT_ID" --status active --expected-version 1 >/dev/null
  # Epics, stories under them, tasks under the stories: all five lanes, a sprint, points,
  # priorities, assignees, comments.
  e1=$(item "$CAROL" epic in_progress high 21 - 0 - "User onboarding" \
    "Everything between installing the app and a first transfer.")
  e2=$(item "$CAROL" epic todo critical 34 - 0 - "Payments")
  e3=$(item "$CAROL" epic backlog medium 13 - 0 - "Performance & reliability")
  s1=$(item "$CAROL" story done high 5 "$ALICE" 1 "$e1" "Sign up with email")
  s2=$(item "$CAROL" story in_progress high 8 "$BOB" 1 "$e1" "KYC document upload" \
    "Photo of an ID card or passport, checked by the KYC vendor.")
  s3=$(item "$ALICE" story todo critical 8 - 1 "$e2" "Pay a contact by phone number")
  s4=$(item "$BOB" story backlog medium 5 - 0 "$e2" "Recurring transfers")
  s5=$(item "$ALICE" story review high 3 "$ALICE" 1 "$e3" "Cold start under 1 second")
  s6=$(item "$BOB" story backlog low 13 - 0 "$e3" "Offline mode for balances")
  item "$ALICE" task done medium 2 "$ALICE" 1 "$s1" "Email verification link" >/dev/null
  item "$BOB" task done low 1 "$BOB" 1 "$s1" "Password strength meter" >/dev/null
  item "$BOB" task in_progress high 3 "$BOB" 1 "$s2" "Camera capture screen" >/dev/null
  t=$(item "$ALICE" task review medium 2 "$ALICE" 1 "$s2" "Upload retries on 5xx")
  item "$ALICE" task todo high 3 "$ALICE" 1 "$s3" "Contact picker" >/dev/null
  item "$CAROL" task todo critical 5 - 1 "$s3" "Fraud check hook" \
    "Call the risk engine before every payment; block on a score above 80." >/dev/null
  item "$ALICE" task in_progress medium 2 "$ALICE" 1 "$s5" "Lazy-load the feed" >/dev/null
  item "$BOB" task backlog low 3 - 0 "$s4" "Schedule editor UI" >/dev/null
  item "$BOB" task todo medium 1 "$BOB" 1 "$s2" "Flaky KYC upload test" >/dev/null
  comment "$BOB" "$s2" "Waiting on the vendor's sandbox keys."
  comment "$ALICE" "$s2" "Keys arrived this morning, unblocked."
  comment "$ALICE" "$s5" "p95 is 1.3 s on a Pixel 4a; the feed is the culprit."
  comment "$CAROL" "$t" "Please cap the retries at 3."
  comment "$CAROL" "$e2" "Legal wants the fraud check before the beta."
}

# ensure_project DIR: seeds the project unless it is there. Sets PROJECT_ID.
ensure_project() {
  local out
  if ! out=$(pmu "$CAROL" project get "$PROJECT_KEY" 2>/dev/null); then
    say "== Seeding the demo project $PROJECT_KEY"
    SEEDING=1 # any failure exits; on_exit explains
    seed
    SEEDING=0
    out=$(pmu "$CAROL" project get "$PROJECT_KEY") || die "the demo project is missing"
  fi
  PROJECT_ID=$(json_field id <<<"$out")
  [ -n "$PROJECT_ID" ] || die "cannot read the project id from: $out"
}

# ---- tmux ----------------------------------------------------------------------------------

# write_launchers DIR CLEAN: the panes' programs, as files (tmux runs them through a shell whose
# environment is the tmux server's, so everything they need is written into them).
write_launchers() {
  local dir=$1 clean=$2 q_pm q_url q_dir q_bin
  q_pm=$(printf '%q' "$PM_BIN")
  q_url=$(printf '%q' "$URL")
  q_dir=$(printf '%q' "$dir")
  q_bin=$(printf '%q' "$BIN_DIR")
  cat >"$dir/board.sh" <<EOF
#!/usr/bin/env bash
# Written by scripts/demo.sh: one demo board. Usage: board.sh NAME USER-ID [once]
while :; do
  $q_pm --server $q_url --user-id "\$2" board --name "\$1" --project $PROJECT_KEY
  [ "\${3:-}" = once ] && exit
  printf '\nThe board closed. Press Enter to open it again.\n'
  read -r _ || exit 0
done
EOF
  cat >"$dir/shell.rc" <<EOF
# Written by scripts/demo.sh: the demo's shell (bash --rcfile), as carol.
if [ "$clean" = 0 ] && [ -f ~/.bashrc ]; then . ~/.bashrc; fi
export PATH=$q_bin:"\$PATH"
export PM_SERVER=$q_url PM_PROJECT=$PROJECT_ID PM_USER_ID=$CAROL PM_DATA_DIR=$q_dir
PS1='\[\e[1;35m\]carol\[\e[0m\]@pm-demo \\$ '
printf '%s\n' \\
  "pm-demo shell: you are carol; pm is on the PATH, PM_SERVER and PM_PROJECT are set. Try:" \\
  '  pm work-item create --project-id \$PM_PROJECT --type task --title "Hello"' \\
  '  pm work-item list \$PM_PROJECT --format table' \\
  '  pm comment create --work-item-id PM-2 --content "Nice"' \\
  'Boards: click one (or Ctrl-b + arrow), ? for its keys. Detach: Ctrl-b d. Stop: scripts/demo.sh --stop'
if [ -n "\${PM_DEMO_TOUR:-}" ]; then
  unset PM_DEMO_TOUR
  printf 'The tour starts in 3 s…\n'
  sleep 3
  python3 $(printf '%q' "$DRIVER") --mode tour --pane-a "\$PM_DEMO_PANE_A" --pane-b "\$PM_DEMO_PANE_B" \\
    --pm $q_pm --server $q_url --project-id $PROJECT_ID --cli-user $CAROL --timeout 600
fi
EOF
  chmod +x "$dir/board.sh"
}

# open_session TMUX-ARGV… : creates session $SESSION (alice | bob on top, the shell below) in
# a window of $WIN_W x $WIN_H. Sets PANE_A, PANE_B, PANE_SHELL. $BOARD_ONCE, $SHELL_ENV apply.
open_session() {
  local board shell
  board=$(printf '%q' "$STATE/board.sh")
  shell="bash --rcfile $(printf '%q' "$STATE/shell.rc") -i"
  PANE_A=$("$@" new-session -d -s "$SESSION" -x "$WIN_W" -y "$WIN_H" -c "$ROOT" \
    -P -F '#{pane_id}' "$board alice $ALICE $BOARD_ONCE")
  PANE_B=$("$@" split-window -h -t "$PANE_A" -c "$ROOT" \
    -P -F '#{pane_id}' "$board bob $BOB $BOARD_ONCE")
  PANE_SHELL=$("$@" split-window -v -f -l "$SHELL_H" -t "$PANE_A" -c "$ROOT" \
    -P -F '#{pane_id}' "env PM_DEMO_PANE_A=$PANE_A PM_DEMO_PANE_B=$PANE_B $SHELL_ENV $shell")
}

# ---- modes ---------------------------------------------------------------------------------

instructions() {
  say ""
  say "The demo runs in tmux session '$SESSION': alice's board (left), bob's board (right), and a"
  say "shell (bottom) where you are carol, with pm on the PATH and \$PM_PROJECT set. Try:"
  say "  pm work-item create --project-id \$PM_PROJECT --type task --title \"Hello\""
  say "Move between panes: click, or Ctrl-b + arrow key. In a board, ? lists its keys."
  say "Detach (the demo keeps running): Ctrl-b d      Attach again: tmux attach -t $SESSION"
  say "Stop it (its server and its tmux session, nothing else): scripts/demo.sh --stop"
  say "Best in a terminal of at least 161x40 (two 80-column boards)."
}

our_session() { # the demo's tmux session exists and is this checkout's
  tmux has-session -t "=$SESSION" 2>/dev/null || return 1
  [ "$(tmux show-options -v -t "=$SESSION:" @pm_demo_dir 2>/dev/null)" = "$DEMO_DIR" ]
}

# The server first: --stop may be typed in the demo's own shell, which the session takes along.
stop_demo() {
  local pid stopped=0
  if pid=$(server_pid "$DEMO_DIR"); then
    stop_server "$pid"
    say "Stopped pm-server (pid $pid)."
    stopped=1
  fi
  if ! command -v tmux >/dev/null 2>&1; then
    :
  elif our_session; then
    say "Closing tmux session '$SESSION'."
    stopped=1
    tmux kill-session -t "=$SESSION"
  elif tmux has-session -t "=$SESSION" 2>/dev/null; then
    err "tmux session '$SESSION' is not this demo's ($DEMO_DIR); left alone."
  fi
  [ "$stopped" = 1 ] || say "The demo is not running."
}

run_demo() {
  need tmux tmux
  [ "$MODE" = tour ] && need python3 python3
  if [ "$FRESH" = 1 ]; then
    stop_demo >/dev/null
    if [ -d "$DEMO_DIR" ]; then
      [ -f "$DEMO_DIR/.pm-demo" ] || die "$DEMO_DIR is not a demo data directory; not removing it"
      rm -rf "$DEMO_DIR"
      say "== Removed the demo's data ($DEMO_DIR)"
    fi
  fi
  build
  mkdir -p "$DEMO_DIR"
  touch "$DEMO_DIR/.pm-demo"
  STATE=$DEMO_DIR

  if SERVER_PID=$(server_pid "$DEMO_DIR"); then
    URL=$(server_url "$DEMO_DIR")
    say "== pm-server is already running at $URL (pid $SERVER_PID)"
  else
    # A session whose boards point at a server that is gone is of no use.
    if our_session; then tmux kill-session -t "=$SESSION"; fi
    start_server "$DEMO_DIR"
    say "== pm-server started at $URL (pid $SERVER_PID, data and log in $DEMO_DIR)"
  fi
  register_name "$URL" "$ALICE" alice
  register_name "$URL" "$BOB" bob
  register_name "$URL" "$CAROL" carol
  ensure_project

  if [ "$MODE" = tour ] && our_session; then
    tmux kill-session -t "=$SESSION"
  fi
  if our_session; then
    say "== tmux session '$SESSION' is already open"
  else
    if tmux has-session -t "=$SESSION" 2>/dev/null; then
      die "a tmux session named '$SESSION' exists and is not this demo's; close it first"
    fi
    write_launchers "$DEMO_DIR" 0
    WIN_W=161 WIN_H=40 SHELL_H=10 BOARD_ONCE=""
    SHELL_ENV=""
    [ "$MODE" = tour ] && SHELL_ENV="PM_DEMO_TOUR=1"
    open_session tmux
    tmux set-option -t "=$SESSION:" @pm_demo_dir "$DEMO_DIR" >/dev/null
    tmux set-option -t "=$SESSION:" mouse on >/dev/null
    tmux select-pane -t "$PANE_SHELL"
    say "== tmux session '$SESSION' opened"
  fi
  instructions
  if [ -t 0 ] && [ -t 1 ]; then
    if [ -n "${TMUX:-}" ]; then
      tmux switch-client -t "=$SESSION"
    else
      tmux attach-session -t "=$SESSION" || true
      say ""
      say "Detached: the demo is still running. Attach again: tmux attach -t $SESSION"
      say "Stop it: scripts/demo.sh --stop"
    fi
  else
    say ""
    say "No terminal here, so not attaching. From a terminal: tmux attach -t $SESSION"
  fi
}

run_check() {
  need tmux tmux
  need python3 python3
  build
  local started dir sock rc=0
  started=$(date +%s)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/pm-demo-check.XXXXXX")
  sock="pm-demo-check-$$"
  CHECK_DIR=$dir CHECK_SOCK=$sock CHECK_OK=0 SERVER_PID=""
  trap 'exit 130' INT TERM HUP
  say "== demo check: server, seed, tmux (socket $sock), tour operations"
  start_server "$dir"
  register_name "$URL" "$ALICE" alice
  register_name "$URL" "$BOB" bob
  register_name "$URL" "$CAROL" carol
  ensure_project
  STATE=$dir
  write_launchers "$dir" 1
  # Its own tmux server (socket), without the user's tmux.conf, panes kept when their program
  # exits (so an error stays readable).
  printf 'set -g remain-on-exit on\nset -g history-limit 2000\n' >"$dir/tmux.conf"
  WIN_W=161 WIN_H=50 SHELL_H=8 BOARD_ONCE=once SHELL_ENV=""
  SESSION=pm-demo-check
  open_session with_timeout 10 tmux -u -L "$sock" -f "$dir/tmux.conf"
  PYTHONIOENCODING=utf-8 with_timeout 150 python3 "$DRIVER" --mode check --socket "$sock" \
    --pane-a "$PANE_A" --pane-b "$PANE_B" --pane-shell "$PANE_SHELL" \
    --pm "$PM_BIN" --server "$URL" --project-id "$PROJECT_ID" --cli-user "$CAROL" \
    --expect-cards "$SEEDED_ITEMS" --deadline "${PM_DEMO_DEADLINE:-5}" --timeout 120 \
    </dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    say "---- server log ($dir/server.log) ----"
    tail -n 60 "$dir/server.log" || true
    say "FAILED: the demo check (exit $rc); its data is kept in $dir"
    exit 1
  fi
  CHECK_OK=1
  say "== demo check passed in $(($(date +%s) - started)) s (after the build)"
}

# Whatever the way out: the check's tmux server and pm-server go, and a failed seeding says so.
SEEDING=0
CHECK_SOCK=""
on_exit() {
  if [ "$SEEDING" = 1 ]; then
    if [ "$MODE" = check ]; then
      tail -n 40 "$CHECK_DIR/server.log" >&2 || true
      err "seeding the demo project failed (server log above: $CHECK_DIR/server.log)"
    else
      err "seeding the demo project failed; start over with: scripts/demo.sh --fresh"
    fi
  fi
  if [ -n "$CHECK_SOCK" ]; then
    with_timeout 10 tmux -L "$CHECK_SOCK" kill-server 2>/dev/null || true
    if [ -n "${SERVER_PID:-}" ]; then stop_server "$SERVER_PID"; fi
    if [ "${CHECK_OK:-0}" = 1 ]; then rm -rf "$CHECK_DIR"; fi
  fi
}
trap on_exit EXIT

case "$MODE" in
  stop) stop_demo ;;
  check) run_check ;;
  *) run_demo ;;
esac
