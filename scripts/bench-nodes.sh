#!/usr/bin/env bash
# Several pm-servers on one PostgreSQL: the figures of BENCHMARKS.md's "Several servers".
#
#   scripts/bench-nodes.sh            # all of them, ~3 minutes after the build
#
# Needs PostgreSQL and psql (PM_BENCH_DATABASE_URL names a database it may create the database
# pm_bench from; default postgres://postgres@127.0.0.1:5432/postgres) and pgbench for the
# NOTIFY figure. Results (pm-bench JSON, pgbench output, server logs) go to target/bench-nodes/.
set -euo pipefail
# psql says NOTICEs (a database that is not there to drop) on stderr; only warnings matter.
export PGOPTIONS=--client-min-messages=warning
cd "$(dirname "$0")/.."
admin=${PM_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
for tool in psql pgbench; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "error: $tool not found (apt-get install postgresql-client)" >&2; exit 1; }
done
psql "$admin" -qtAc 'SELECT 1' >/dev/null ||
  { echo "error: no PostgreSQL at $admin (set PM_BENCH_DATABASE_URL)" >&2; exit 1; }

cargo build --release --locked -p pm-server -p pm-bench
SERVER_BIN=target/release/pm-server
BENCH=target/release/pm-bench
# shellcheck source=scripts/bench-servers.sh
. scripts/bench-servers.sh

out=target/bench-nodes
rm -rf "$out"
mkdir -p "$out"
db="${admin%/*}/pm_bench"
NODES=()
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql "$admin" -qc "DROP DATABASE IF EXISTS pm_bench WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A new empty database and $1 servers on it: NODES holds their URLs.
start_nodes() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  NODES=()
  PIDS=()
  psql "$admin" -qc "DROP DATABASE IF EXISTS pm_bench WITH (FORCE)" >/dev/null
  psql "$admin" -qc "CREATE DATABASE pm_bench" >/dev/null
  local run=$2
  for n in $(seq 1 "$1"); do
    PM_DATABASE_URL=$db start_server "$out/$run-node$n"
    NODES+=("http://127.0.0.1:$PORT")
    PIDS+=("$SERVER_PID")
  done
}

bench() {
  local name=$1
  shift
  echo "== $name: pm-bench $*"
  "$BENCH" -q --json "$out/$name.json" "$@" | tee "$out/$name.txt"
}

# 1. One server on PostgreSQL: updates/s with 100 subscribers (goal: at least 5,000/s).
start_nodes 1 one
bench pg-one-throughput --url "${NODES[0]}" throughput -n 100 -d 10 --rounds 3

# 2. Cross-server delivery: the writer on one server, 300 subscribers on the two others,
#    1,000 mutations/s (goal: p99 under 20 ms).
start_nodes 3 cross
bench pg-cross-fanout --url "${NODES[0]},${NODES[1]},${NODES[2]}" fanout -n 300 -r 1000 -d 10

# 3. Three servers writing to three projects at once, 33 subscribers each on its own server:
#    the sum of the three.
start_nodes 3 three
benches=()
for n in 0 1 2; do
  "$BENCH" -q --json "$out/pg-three-$n.json" --url "${NODES[$n]}" \
    throughput -n 33 -d 10 >"$out/pg-three-$n.txt" &
  benches+=($!)
done
wait "${benches[@]}"
python3 - "$out" <<'EOF'
import json, sys
rates = [json.load(open(f"{sys.argv[1]}/pg-three-{n}.json"))["results"]["mutations_per_sec"] for n in range(3)]
print("== three servers, three projects: " + " + ".join(f"{r:,.0f}" for r in rates) + f" = {sum(rates):,.0f} updates/s")
EOF

# 4. What NOTIFY costs PostgreSQL: one-row updates of one table by 8 clients for 10 s, with and
#    without a pg_notify in each transaction (PostgreSQL takes a database-wide lock to queue
#    notifications at commit).
start_nodes 0 pgbench
psql "$db" -qc "CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL);
                INSERT INTO counters SELECT g, 0 FROM generate_series(1, 64) g;"
cat >"$out/plain.sql" <<'EOF'
\set id random(1, 64)
BEGIN;
UPDATE counters SET n = n + 1 WHERE id = :id;
COMMIT;
EOF
sed 's/^COMMIT;/SELECT pg_notify('"'"'pm_events'"'"', '"'"'node\n1 stream'"'"');\nCOMMIT;/' \
  "$out/plain.sql" >"$out/notify.sql"
for kind in plain notify plain notify; do
  pgbench -n -c 8 -j 2 -T 10 -f "$out/$kind.sql" "$db" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' | sed "s/^/$kind tps: /" | tee -a "$out/pgbench.txt"
done

# 5. Kill a server during a fan-out run: its 300 subscribers move to another server and resume
#    there (goal: back and caught up within 2 s, nothing lost).
start_nodes 3 failover
bench pg-failover --url "${NODES[0]},${NODES[1]},${NODES[2]}" \
  failover -n 300 -r 200 -d 10 --kill-at 3 --victim-pid "${PIDS[1]}"
