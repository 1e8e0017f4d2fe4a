#!/usr/bin/env bash
# Checks deploy/nginx.conf against a real nginx: a token-mode pm-server on a free port, nginx
# (from Debian's packages; installed with apt-get when missing) in a throwaway prefix with a
# self-signed certificate, then REST and a live WebSocket subscription over TLS through it
# (scripts/deploy_check.py). Nothing of the system's nginx is used or touched.
#
#   scripts/deploy-check.sh
#
# Needs nginx (or root and apt-get to install it), openssl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

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
}
trap cleanup EXIT

echo "== a self-signed certificate for localhost"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/privkey.pem" -out "$WORK/fullchain.pem" 2>/dev/null

echo "== pm-server (token mode)"
mkdir -p "$WORK/data"
PM_LOG=warn "$SERVER" --data-dir "$WORK/data" --port 0 --auth token --jwt-secret "$SECRET" \
  --max-http-connections-per-ip 0 >"$WORK/server.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 200); do
  [ -s "$WORK/data/server.json" ] && break
  sleep 0.05
done
[ -s "$WORK/data/server.json" ] || { cat "$WORK/server.log" >&2; echo "error: pm-server did not start" >&2; exit 1; }
SERVER_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$WORK/data/server.json")
TOKEN=$(PM_LOG=off "$SERVER" --jwt-secret "$SECRET" issue-token \
  --user-id 3f2b8c1d-4e5a-4b6c-8d7e-9f0a1b2c3d4e --admin)

echo "== nginx with deploy/nginx.conf"
PROXY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The file as shipped, with this run's port, certificate and upstream in place of the examples.
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$PROXY_PORT ssl;|" \
    -e "/listen \[::\]:443 ssl;/d" \
    -e "s|/etc/ssl/pm/|$WORK/|g" \
    -e "s|server 127.0.0.1:8000;|server 127.0.0.1:$SERVER_PORT;|" \
    -e "s|server_name pm.example.com;|server_name localhost;|" \
    deploy/nginx.conf >"$WORK/site.conf"
grep -q "listen 127.0.0.1:$PROXY_PORT ssl;" "$WORK/site.conf" \
  && grep -q "server 127.0.0.1:$SERVER_PORT;" "$WORK/site.conf" \
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
if ! python3 scripts/deploy_check.py "https://localhost:$PROXY_PORT" "$WORK/fullchain.pem" "$TOKEN"; then
  echo "--- nginx error log" >&2; cat "$WORK/logs/error.log" >&2
  echo "--- pm-server log" >&2; cat "$WORK/server.log" >&2
  exit 1
fi
