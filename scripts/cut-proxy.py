#!/usr/bin/env python3
"""A TCP proxy that can be cut: `cut-proxy.py TARGET_PORT PORT_FILE CONTROL_FILE`.

Listens on a free loopback port (written to PORT_FILE) and forwards every connection to
127.0.0.1:TARGET_PORT. While CONTROL_FILE exists the link is cut: open connections are closed
and new ones are closed at once, as when a laptop's network goes away; removing the file
restores it. Used by scripts/board-offline-e2e.sh.
"""
import os
import socket
import sys
import threading
import time

target_port, port_file, control = int(sys.argv[1]), sys.argv[2], sys.argv[3]
open_socks = []
lock = threading.Lock()


def cut():
    return os.path.exists(control)


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def watch():
    """Closes every open connection when the link is cut."""
    while True:
        if cut():
            with lock:
                for s in open_socks:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    except OSError:
                        pass
                open_socks.clear()
        time.sleep(0.05)


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
threading.Thread(target=watch, daemon=True).start()
while True:
    client, _ = listener.accept()
    if cut():
        client.close()
        continue
    try:
        server = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        client.close()
        continue
    with lock:
        open_socks.extend([client, server])
    threading.Thread(target=pipe, args=(client, server), daemon=True).start()
    threading.Thread(target=pipe, args=(server, client), daemon=True).start()
