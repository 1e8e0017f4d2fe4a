#!/usr/bin/env bash
# Runs the whole test suite: unit, property and real-socket integration tests of every crate,
# then pm-server's integration suite once more on PostgreSQL (every test server gets a database
# of its own). Extra arguments go to the first `cargo test` (e.g. scripts/test.sh -p pm-server).
#
# PostgreSQL: PM_TEST_DATABASE_URL names a database the tests may create databases from
# (default postgres://postgres@127.0.0.1:5432/postgres). Without a reachable server the
# PostgreSQL suite is skipped with a message, except under CI=true, where that is a failure.
set -euo pipefail
# psql says NOTICEs (a database that is not there to drop) on stderr; only warnings matter.
export PGOPTIONS=--client-min-messages=warning
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust from https://rustup.rs and try again." >&2
  exit 1
fi
cargo test --workspace --locked "$@"

pg_url=${PM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_reachable() {
  command -v psql >/dev/null 2>&1 && psql "$pg_url" -qtAc 'SELECT 1' >/dev/null 2>&1
}
# Databases the PostgreSQL suite created (pm_t_<uuid>), from this run or an interrupted one.
drop_test_databases() {
  psql "$pg_url" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'pm\_t\_%'" |
    while read -r db; do
      [ -n "$db" ] && psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
}
if pg_reachable; then
  echo "== pm-server's integration suite on PostgreSQL ($pg_url)"
  drop_test_databases
  PM_TEST_DATABASE_URL=$pg_url cargo test -p pm-server --locked --test it
  drop_test_databases
elif [ "${CI:-}" = true ]; then
  echo "error: PostgreSQL is not reachable at $pg_url (psql $(command -v psql >/dev/null && echo found || echo missing)); CI runs the suite on both backends" >&2
  exit 1
else
  echo "note: the PostgreSQL suite did NOT run: no PostgreSQL at $pg_url (or no psql)." >&2
  echo "      Start one (apt-get install postgresql) or set PM_TEST_DATABASE_URL, then rerun." >&2
fi
