#!/usr/bin/env python3
"""Talks to pm-server through the TLS proxy of scripts/deploy-check.sh, as a client would.

REST over HTTPS (health, create a project, create a work item, the admin's /metrics) and a
WebSocket over TLS (wss://.../ws?token=...): it subscribes to the project and must receive the
WorkItemCreated event of the item created over REST afterwards. The pm CLI has no TLS client, so
this speaks the WebSocket protocol (RFC 6455) and the few protobuf fields it needs itself.

Standard library only:  deploy_check.py https://localhost:PORT CA_CERT TOKEN [PROJECT_KEY]
"""
import base64
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse

TIMEOUT = 10


def fail(message):
    print(f"deploy check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


class Rest:
    def __init__(self, base, context, token):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.context, self.token = context, token

    def call(self, method, path, body=None):
        conn = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=TIMEOUT
        )
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        conn.close()
        return response.status, response.getheader("Content-Type", ""), text

    def json(self, method, path, body=None):
        status, _, text = self.call(method, path, body)
        if status != 200:
            fail(f"{method} {path}: {status} {text}")
        return json.loads(text)


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


# proto/messages.proto: WebSocketMessage.message_id = 1, .subscribe = 20,
# Subscribe.project_ids = 1, WebSocketMessage.work_item_created = 40.
def subscribe_message(message_id, project_id):
    return field(1, message_id.encode()) + field(20, field(1, project_id.encode()))


WORK_ITEM_CREATED = varint(40 << 3 | 2)


class WebSocket:
    def __init__(self, base, context, token):
        url = urllib.parse.urlsplit(base)
        raw = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname=url.hostname)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws?token={urllib.parse.quote(token)} HTTP/1.1\r\n"
            f"Host: {url.hostname}:{url.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                fail(f"the WebSocket upgrade got no answer: {head!r}")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            fail(f"the WebSocket upgrade was refused: {head.decode(errors='replace')}")

    def send_binary(self, payload):
        mask = os.urandom(4)
        header = bytes([0x82])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail("the WebSocket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def next_message(self):
        """The next data frame's payload (the server sends unfragmented frames)."""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            payload = self._read(n)
            opcode = first & 0x0F
            if opcode == 0x8:
                fail(f"the server closed the WebSocket: {payload!r}")
            if opcode in (0x1, 0x2):
                return payload

    def wait_for(self, predicate, what):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                message = self.next_message()
            except socket.timeout:
                break
            if predicate(message):
                return message
        fail(f"no {what} within {TIMEOUT} s")


def main():
    base, ca_cert, token = sys.argv[1:4]
    # Another project key for each run against one database (scripts/nodes-check.sh).
    key = sys.argv[4] if len(sys.argv) > 4 else "NGX"
    context = ssl.create_default_context(cafile=ca_cert)
    rest = Rest(base, context, token)

    health = rest.json("GET", "/health")
    if health.get("status") != "ok":
        fail(f"/health: {health}")
    project = rest.json("POST", "/api/v1/projects", {"title": "Behind nginx", "key": key})["project"]

    ws = WebSocket(base, context, token)
    ws.send_binary(subscribe_message("deploy-check-1", project["id"]))
    ws.wait_for(lambda m: b"deploy-check-1" in m, "answer to Subscribe")

    title = "Created through the proxy"
    rest.json(
        "POST",
        "/api/v1/work-items",
        {"project_id": project["id"], "item_type": "task", "title": title},
    )
    ws.wait_for(
        lambda m: WORK_ITEM_CREATED in m and title.encode() in m,
        "WorkItemCreated event on the subscribed WebSocket",
    )

    status, content_type, text = rest.call("GET", "/metrics")
    if status != 200 or not content_type.startswith("text/plain") or "pm_events_published_total" not in text:
        fail(f"/metrics: {status} {content_type} {text[:200]}")
    print(
        "deploy check: through nginx with TLS: /health, REST writes, a live WebSocket "
        "subscription (WorkItemCreated received) and /metrics all work"
    )


if __name__ == "__main__":
    main()
