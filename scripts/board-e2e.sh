#!/usr/bin/env bash
# End-to-end test of `pm board` in real terminals: a pm-server of its own, two boards (alice and
# bob) in tmux, keys and pastes sent the way a person sends them, and what the boards show read
# back with `tmux capture-pane`. It replays the board's worst bugs of issue 21:
#
#   1. rapid keys      p p p and L L L pressed at once all apply (no false "Conflict")
#   2. concurrent edit alice and bob rename one card at once: bob is shown the conflict with
#                      both texts, and "keep mine" saves his title on the current version
#   3. a large paste   5,000 characters pasted (bracketed, tmux paste-buffer -p) into the new
#                      card dialog stay one edit: none replayed as commands, the limit flagged
#                      (5000/200), Enter keeps the dialog and the text, a fixed title saves
#   4. $EDITOR         E hands the terminal to $EDITOR (a script here) and takes it back; the
#                      description it wrote is saved and shown in the detail pane
#   5. undo            u after a delete brings the same card back (same key) with its fields
#   6. offline         scripts/board-offline-e2e.sh: bob's link cut by a proxy, edits on both
#                      boards, restored: the commuting edit lands, the conflict waits in bob's
#                      inbox, keep mine saves it
#
#   scripts/board-e2e.sh          build (dev profile), run, exit 1 on the first failure
#
# Environment: PM_E2E_PROFILE (cargo profile, default dev: it reuses the test build),
# PM_E2E_TIMEOUT (seconds each expected screen or change may take, default 10).
# Needs tmux (apt-get install tmux / brew install tmux) and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=${PM_E2E_PROFILE:-dev}
TIMEOUT=${PM_E2E_TIMEOUT:-10}

say() { printf '%s\n' "$*"; }
die() {
  printf 'board-e2e: %s\n' "$*" >&2
  exit 1
}

command -v tmux >/dev/null 2>&1 ||
  die "tmux is not installed; it runs the boards in real terminals (apt-get install tmux / brew install tmux)"
command -v python3 >/dev/null 2>&1 ||
  die "python3 is not installed; it reads the CLI's JSON (apt-get install python3)"

target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$ROOT/$target" ;; esac
if [ "$PROFILE" = dev ]; then BIN="$target/debug"; else BIN="$target/$PROFILE"; fi
if command -v cargo >/dev/null 2>&1; then
  say "== building pm and pm-server (cargo profile $PROFILE)"
  (cd "$ROOT" && cargo build --profile "$PROFILE" -p pm -p pm-server </dev/null) ||
    die "the build failed"
fi
[ -x "$BIN/pm" ] && [ -x "$BIN/pm-server" ] || die "no pm and pm-server binaries in $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-board-e2e.XXXXXX")
SOCK="pm-board-e2e-$$"
SERVER_PID=""
PASSED=0
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$PASSED" = 1 ]; then rm -rf "$WORK"; else say "its files are kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
started=$(date +%s)

# ---- the server and the data ---------------------------------------------------------------

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
say "== pm-server at $URL"

# The CLI as carol; the boards are alice and bob (their names are their identities).
pmc() { env -u PM_USER_ID -u PM_TOKEN "$BIN/pm" --server "$URL" "$@" </dev/null; }
# field KEY NAME: a field of a work item, read through the CLI.
field() {
  pmc work-item get "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["work_item"][sys.argv[1]])' "$2"
}

pmc project create --title "End to end" --key E2E >/dev/null
pmc work-item create --project-id E2E --type task --title "Rapid keys" >/dev/null
pmc work-item create --project-id E2E --type task --title "Shared title" >/dev/null

# ---- two boards in tmux ---------------------------------------------------------------------

printf 'set -g remain-on-exit on\nset -g history-limit 100\n' >"$WORK/tmux.conf"
# The boards' $EDITOR: writes a two-line description into the file it is given.
printf '#!/bin/sh\nprintf "Written in the editor\\nSecond line\\n" > "$1"\n' >"$WORK/editor.sh"
chmod +x "$WORK/editor.sh"
tm() { tmux -u -L "$SOCK" -f "$WORK/tmux.conf" "$@"; }
for who in alice bob; do
  tm new-session -d -s "$who" -x 120 -y 40 \
    "env -u PM_USER_ID -u PM_TOKEN -u PM_SERVER -u VISUAL XDG_DATA_HOME=$WORK/$who-data TERM=xterm-256color EDITOR=$WORK/editor.sh $BIN/pm board --server $URL --name $who --project E2E"
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
# wait_screen WHO TEXT WHAT: until WHO's board shows TEXT.
wait_screen() {
  local deadline=$((SECONDS + TIMEOUT))
  until screen "$1" | grep -qF -- "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$3: $1's board never showed \"$2\""
    sleep 0.1
  done
}
# wait_gone WHO TEXT WHAT: until WHO's board no longer shows TEXT. (A key sent right after Esc
# would reach the board as Alt+key: the next key waits for what Esc did.)
wait_gone() {
  local deadline=$((SECONDS + TIMEOUT))
  while screen "$1" | grep -qF -- "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$3: $1's board still shows \"$2\""
    sleep 0.1
  done
}
# refuse_screen WHO TEXT WHAT: WHO's board does not show TEXT.
refuse_screen() {
  if screen "$1" | grep -qF -- "$2"; then fail "$3: $1's board shows \"$2\""; fi
}
# wait_field KEY NAME VALUE WHAT: until the server has VALUE in that field.
wait_field() {
  local deadline=$((SECONDS + TIMEOUT)) got=""
  while got=$(field "$1" "$2") && [ "$got" != "$3" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$4: $1's $2 is \"$got\", not \"$3\""
    sleep 0.1
  done
}
keys() { tm send-keys -t "$@"; }

wait_screen alice "E2E-2" "alice's board opens"
wait_screen bob "E2E-2" "bob's board opens"
wait_screen alice "● connected" "alice's board connects"
wait_screen bob "● connected" "bob's board connects"

# ---- 1. rapid keys ---------------------------------------------------------------------------
say "== 1. p p p and L L L at once"
# Both boards start on the Backlog lane's first card, E2E-1 (medium priority).
keys alice p p p
keys alice L L L
wait_field E2E-1 priority low "three priority presses (medium → high → critical → low)"
wait_field E2E-1 status review "three moves (backlog → todo → in progress → review)"
wait_screen bob "Review 1" "bob sees the card in Review"
refuse_screen alice "failed" "rapid keys"
refuse_screen alice "Conflict" "rapid keys"
say "   all six applied, no conflict"

# ---- 2. concurrent title edits ----------------------------------------------------------------
say "== 2. alice and bob rename E2E-2 at once"
keys alice Left Left Left # back to Backlog, where E2E-2 is now first
keys alice e
wait_screen alice "Edit title" "alice's edit opens"
keys bob e
wait_screen bob "Edit title" "bob's edit opens"
keys alice -l " by alice"
keys bob -l " by bob"
wait_screen alice "Shared title by alice" "alice types"
wait_screen bob "Shared title by bob" "bob types"
keys alice Enter
wait_field E2E-2 title "Shared title by alice" "alice saves first"
keys bob Enter
wait_screen bob "was renamed while you edited it" "bob is told of the conflict"
wait_screen bob "theirs Shared title by alice" "the conflict shows alice's text"
wait_screen bob "mine   Shared title by bob" "the conflict shows bob's text"
[ "$(field E2E-2 title)" = "Shared title by alice" ] || fail "bob's save overwrote alice's silently"
keys bob m
wait_field E2E-2 title "Shared title by bob" "keep mine saves bob's title on the current version"
wait_screen alice "Shared title by bob" "alice sees bob's title"
say "   conflict shown with both texts; keep mine saved"

# ---- 3. a 5,000-character paste ---------------------------------------------------------------
say "== 3. 5,000 characters pasted into a new card"
# Letters that are board commands (h e l q d…), so a paste replayed as keys would show.
python3 -c 'import sys; t=("hello quick edit " * 300)[:4999] + "x"; sys.stdout.write(t)' >"$WORK/paste.txt"
[ "$(wc -c <"$WORK/paste.txt")" -eq 5000 ] || fail "the paste is not 5,000 characters"
keys alice n
wait_screen alice "New Task in Backlog" "the new card dialog opens"
tm load-buffer -b e2e "$WORK/paste.txt"
tm paste-buffer -p -d -b e2e -t alice
wait_screen alice "5000/200" "the pasted text is counted against the limit"
keys alice Enter
wait_screen alice "Title too long (5000/200)" "Enter over the limit says why"
wait_screen alice "New Task in Backlog" "the dialog stays open with the text"
refuse_screen alice "Edit title" "the paste replayed as commands"
# The text is still there: Ctrl-U deletes it (the cursor is at its end), then a short title.
keys alice C-u
wait_screen alice "New Task in Backlog" "the dialog stays open"
keys alice -l "Pasted then fixed"
keys alice Enter
deadline=$((SECONDS + TIMEOUT))
until pmc work-item list E2E | grep -qF '"Pasted then fixed"'; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the fixed title was not created"
  sleep 0.1
done
count=$(pmc work-item list E2E | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["work_items"]))')
[ "$count" = 3 ] || fail "expected 3 cards, found $count (keys of the paste ran as commands?)"
refuse_screen alice "failed" "the paste"
say "   one edit, flagged, kept, and saved once fixed"

# ---- 4. the description in $EDITOR -----------------------------------------------------------
say "== 4. E: the description in \$EDITOR"
# The card just created is selected.
keys alice E
deadline=$((SECONDS + TIMEOUT))
until [ "$(field E2E-3 description)" = "$(printf 'Written in the editor\nSecond line')" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the description from the editor was not saved"
  sleep 0.1
done
wait_screen alice "● connected" "the board is back after the editor"
keys alice Enter
wait_screen alice "Second line" "the detail pane shows the description (keys are read again)"
keys alice Escape
wait_gone alice "Details" "Esc closes the detail pane"
say "   saved from the editor, board back and reading keys"

# ---- 5. undo a delete ------------------------------------------------------------------------
say "== 5. d y, then u: the deleted card comes back"
count_cards() { pmc work-item list E2E | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["work_items"]))'; }
keys alice d
wait_screen alice "y: delete" "the delete dialog"
keys alice y
deadline=$((SECONDS + TIMEOUT))
until [ "$(count_cards)" = 2 ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the card was not deleted"
  sleep 0.1
done
keys alice u
wait_screen alice "Undo: E2E-3 is back" "u brings the card back"
deadline=$((SECONDS + TIMEOUT))
until [ "$(field E2E-3 description)" = "$(printf 'Written in the editor\nSecond line')" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the card came back without its description"
  sleep 0.1
done
[ "$(count_cards)" = 3 ] || fail "the card came back as more than one"
say "   the same card back (E2E-3), with its fields"

PASSED=1
say "== board e2e passed in $(($(date +%s) - started)) s (after the build)"

say "== 6. offline (scripts/board-offline-e2e.sh)"
PM_E2E_BUILT=1 PM_E2E_PROFILE="$PROFILE" "$ROOT/scripts/board-offline-e2e.sh"
