#!/usr/bin/env bash
# Writes a Blazor Agile Board database with the reference's own binaries (bab-pm-server and bab-pm,
# ../shared/reference/bin, or $BAB_BIN): two projects, an epic/story/task tree, two sprints (one
# active), comments (one edited, one deleted, one longer than pm's own comment limit), links (one
# crossing projects, one deleted), time entries (one stopped, one still running), a deleted item,
# an archived project. pm-server's tests open the result (server/tests/it/reference_db.rs);
# by hand it gives a database to try `pm-server migrate --from` or an in-place start on.
#
#   scripts/reference-db.sh DIR     # DIR: a new or empty directory outside any git checkout
#
# The database lands at DIR/.pm/data.db (the reference keeps it under $HOME/.pm, and HOME is DIR).
# The reference server is stopped with SIGTERM, as a killed server would be: its last writes
# are still in data.db-wal, which whoever opens the file next must read. The last line printed
# is the database's path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${BAB_BIN:-$here/../../shared/reference/bin}
if [ ! -x "$bin/bab-pm-server" ] || [ ! -x "$bin/bab-pm" ]; then
  echo "error: no reference binaries in $bin (set BAB_BIN)" >&2
  exit 2
fi
bin=$(cd "$bin" && pwd)
dir=${1:?usage: scripts/reference-db.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -e "$dir/.pm/data.db" ]; then
  echo "error: $dir/.pm/data.db exists already" >&2
  exit 2
fi

# The reference refuses the 101st WebSocket message and comments over 5,000 characters by
# default; its own repository raises the comment limit to 150,000.
cd "$dir"
env HOME="$dir" PM_SERVER_HOST=127.0.0.1 PM_SERVER_PORT=0 \
  PM_RATE_LIMIT_MAX_REQUESTS=10000 PM_RATE_LIMIT_WINDOW_SECS=1 \
  PM_VALIDATION_MAX_COMMENT_LENGTH=150000 \
  "$bin/bab-pm-server" >"$dir/reference-server.log" 2>&1 &
server_pid=$!
stop_server() { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
trap stop_server EXIT

port=
for _ in $(seq 1 100); do
  if [ -s "$dir/.pm/server.json" ]; then
    port=$(sed -n 's/.*"port": *\([0-9]*\).*/\1/p' "$dir/.pm/server.json")
    [ -n "$port" ] && break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$dir/reference-server.log" >&2
    echo "error: bab-pm-server exited" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "error: bab-pm-server wrote no port file" >&2
  exit 1
fi

# Every write acts as the reference's LLM user (00000000-…-0001), the one user a fresh
# reference database knows: a user it has never seen fails on a foreign key.
pm() { env HOME="$dir" "$bin/bab-pm" --server "http://127.0.0.1:$port" "$@"; }
# The first "id" of a compact JSON response: the entity's own (keys are sorted, one level deep).
id_of() { grep -o '"id":"[^"]*"' | head -n 1 | cut -d'"' -f4; }

now=$(date +%s)
p1=$(pm project create --title "Reference One" --key RONE --description "The first project" | id_of)
p2=$(pm project create --title "Reference Two" --key RTWO | id_of)
pm project update "$p2" --status archived --expected-version 1 >/dev/null

s1=$(pm sprint create --project-id "$p1" --name "Sprint 1" --goal "Ship the tree" \
  --start-date $((now - 7 * 86400)) --end-date $((now + 7 * 86400)) | id_of)
pm sprint update "$s1" --status active --expected-version 1 >/dev/null
pm sprint create --project-id "$p1" --name "Sprint 2" \
  --start-date $((now + 7 * 86400)) --end-date $((now + 21 * 86400)) >/dev/null

epic=$(pm work-item create --project-id "$p1" --type epic --title "The epic" \
  --description "An epic with a *markdown* description" | id_of)
story=$(pm work-item create --project-id "$p1" --type story --title "The story" --parent-id "$epic" | id_of)
t1=$(pm work-item create --project-id "$p1" --type task --title "Task one" --parent-id "$story" \
  --priority high | id_of)
t2=$(pm work-item create --project-id "$p1" --type task --title "Task two" --parent-id "$story" \
  --status in_progress | id_of)
t3=$(pm work-item create --project-id "$p1" --type task --title "Task three, deleted later" | id_of)
other=$(pm work-item create --project-id "$p2" --type epic --title "Elsewhere" | id_of)
pm work-item update "$t1" --status review --sprint-id "$s1" --story-points 5 \
  --assignee-id 00000000-0000-0000-0000-000000000001 --version 1 >/dev/null

pm comment create --work-item-id "$t1" --content "First comment" >/dev/null
edited=$(pm comment create --work-item-id "$t1" --content "Second comment" | id_of)
pm comment update "$edited" --content "Second comment, edited" >/dev/null
gone=$(pm comment create --work-item-id "$t2" --content "Deleted comment" | id_of)
pm comment delete "$gone" >/dev/null
pm comment create --work-item-id "$t2" --content "$(printf 'long %.0s' $(seq 1 1500))" >/dev/null
pm comment create --work-item-id "$t3" --content "On an item deleted later" >/dev/null

pm dependency create --blocking "$t1" --blocked "$t2" --type blocks >/dev/null
pm dependency create --blocking "$epic" --blocked "$other" --type relates_to >/dev/null
dropped=$(pm dependency create --blocking "$t2" --blocked "$t3" --type blocks | id_of)
pm dependency delete "$dropped" >/dev/null

stopped=$(pm time-entry create --work-item-id "$t1" --description "Stopped timer" | id_of)
pm time-entry update "$stopped" --stop >/dev/null
pm time-entry create --work-item-id "$t2" --description "Running timer" >/dev/null

pm work-item delete "$t3" >/dev/null

stop_server
trap - EXIT
echo "$dir/.pm/data.db"
