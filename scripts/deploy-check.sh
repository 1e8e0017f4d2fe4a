#!/usr/bin/env bash
# Checks deploy/nginx.conf against a real nginx: a token-mode pm-server on a free port, nginx
# (from Debian's packages; installed with apt-get when missing) in a throwaway prefix with a
# self-signed certificate, then REST and a live WebSocket subscription over TLS through it
# (scripts/deploy_check.py). Nothing of the system's nginx is used or touched.
#
#   scripts/deploy-check.sh
#   scripts/deploy-check.sh --servers 3   # three pm-servers on one PostgreSQL behind nginx;
#                                         # one is killed and the check runs again
#
# Needs nginx (or root and apt-get to install it), openssl and python3; with --servers, also
# PostgreSQL and psql (PM_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
# psql says NOTICEs (a database that is not there to drop) on stderr; only warnings matter.
export PGOPTIONS=--client-min-messages=warning
cd "$(dirname "$0")/.."
SERVERS=1
if [ "${1:-}" = --servers ]; then
  SERVERS=${2:?--servers needs a number}
fi
PG_ADMIN=${PM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB="${PG_ADMIN%/*}/pm_deploy_check"
if [ "$SERVERS" -gt 1 ]; then
  command -v psql >/dev/null 2>&1 && psql "$PG_ADMIN" -qtAc 'SELECT 1' >/dev/null 2>&1 ||
    { echo "error: --servers needs PostgreSQL at $PG_ADMIN and psql" >&2; exit 1; }
fi

TARGET=${CARGO_TARGET_DIR:-target}
SECRET=deploy-check-secret-of-at-least-32-characters

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== apt-get install nginx"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >/dev/null
  else
    echo "error: deploy-check needs nginx: apt-get install nginx (as root), then run this again" >&2
    exit 1
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "error: deploy-check needs $tool (apt-get install $tool)" >&2
    exit 1
  }
done

echo "== cargo build -p pm-server"
cargo build -q -p pm-server
SERVER=$TARGET/debug/pm-server

WORK=$(mktemp -d)
# nginx's workers run as an unprivileged user and read the configuration's directories.
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  if [ "$SERVERS" -gt 1 ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS pm_deploy_check WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

echo "== a self-signed certificate for localhost"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/privkey.pem" -out "$WORK/fullchain.pem" 2>/dev/null

# Starts pm-server number $1 (token mode; on PostgreSQL with several); sets SERVER_PORT.
start_pm_server() {
  local n=$1 database=()
  if [ "$SERVERS" -gt 1 ]; then database=(--database-url "$PG_DB"); fi
  mkdir -p "$WORK/data$n"
  PM_LOG=warn "$SERVER" --data-dir "$WORK/data$n" --port 0 --auth token --jwt-secret "$SECRET" \
    --max-http-connections-per-ip 0 "${database[@]}" >"$WORK/server$n.log" 2>&1 &
  PIDS+=("$!")
  SERVER_PIDS+=("$!")
  for _ in $(seq 1 200); do
    [ -s "$WORK/data$n/server.json" ] && break
    sleep 0.05
  done
  [ -s "$WORK/data$n/server.json" ] || { cat "$WORK/server$n.log" >&2; echo "error: pm-server did not start" >&2; exit 1; }
  SERVER_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$WORK/data$n/server.json")
}

if [ "$SERVERS" -gt 1 ]; then
  echo "== $SERVERS pm-servers (token mode) on one PostgreSQL database"
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS pm_deploy_check WITH (FORCE)" >/dev/null
  psql "$PG_ADMIN" -qc "CREATE DATABASE pm_deploy_check" >/dev/null
else
  echo "== pm-server (token mode)"
fi
SERVER_PIDS=()
UPSTREAM=""
for n in $(seq 1 "$SERVERS"); do
  start_pm_server "$n"
  UPSTREAM="${UPSTREAM}server 127.0.0.1:$SERVER_PORT max_fails=1 fail_timeout=10s; "
done
TOKEN=$(PM_LOG=off "$SERVER" --jwt-secret "$SECRET" issue-token \
  --user-id 3f2b8c1d-4e5a-4b6c-8d7e-9f0a1b2c3d4e --admin)

echo "== nginx with deploy/nginx.conf"
PROXY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The file as shipped, with this run's port, certificate and upstream in place of the examples.
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$PROXY_PORT ssl;|" \
    -e "/listen \[::\]:443 ssl;/d" \
    -e "s|/etc/ssl/pm/|$WORK/|g" \
    -e "s|server 127.0.0.1:8000 max_fails=1 fail_timeout=10s;|$UPSTREAM|" \
    -e "s|server_name pm.example.com;|server_name localhost;|" \
    deploy/nginx.conf >"$WORK/site.conf"
grep -q "listen 127.0.0.1:$PROXY_PORT ssl;" "$WORK/site.conf" \
  && grep -q "server 127.0.0.1:$SERVER_PORT max_fails" "$WORK/site.conf" \
  && grep -q "$WORK/fullchain.pem" "$WORK/site.conf" \
  || { echo "error: deploy/nginx.conf no longer has the example lines this check replaces" >&2; exit 1; }
mkdir -p "$WORK/logs"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log $WORK/logs/access.log;
    client_body_temp_path $WORK/client_body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    include $WORK/site.conf;
}
CONF
"$NGINX" -t -p "$WORK" -c "$WORK/nginx.conf" 2>"$WORK/nginx-t.log" || { cat "$WORK/nginx-t.log" >&2; exit 1; }
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' 2>>"$WORK/logs/error.log" &
PIDS+=("$!")
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
  sleep 0.05
done

echo "== REST and a WebSocket subscription through https://localhost:$PROXY_PORT"
check() {
  if ! python3 scripts/deploy_check.py "https://localhost:$PROXY_PORT" "$WORK/fullchain.pem" "$TOKEN" "$1"; then
    echo "--- nginx error log" >&2; cat "$WORK/logs/error.log" >&2
    for log in "$WORK"/server*.log; do echo "--- $log" >&2; cat "$log" >&2; done
    exit 1
  fi
}
check NGX
if [ "$SERVERS" -gt 1 ]; then
  # The first server dies; nginx passes over it, the others serve everything.
  echo "== kill -9 the first pm-server, then the same through https://localhost:$PROXY_PORT"
  kill -9 "${SERVER_PIDS[0]}"
  check NGY
fi
