"""A deliberately broken chat server for tests/test_bench.py: bench must report its failures.

- blocking broadcast: `sendall()` to every client in turn, so one client that stops
  reading freezes everyone;
- no framing: it relays raw `recv(CHUNK)` chunks (16 bytes unless given), so lines of
  different senders interleave.
(The handshake runs in the client's own thread, so joining works.)

Usage: python tests/broken_server.py [CHUNK]  -> prints "listening on 127.0.0.1:PORT".
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading

CHUNK = int(sys.argv[1]) if len(sys.argv) > 1 else 16

clients: list[socket.socket] = []
lock = threading.Lock()


def broadcast(data: bytes) -> None:
    for c in list(clients):
        with contextlib.suppress(OSError):
            c.sendall(data)  # blocks while c does not read: the flaw under test


def handle(conn: socket.socket) -> None:
    try:
        conn.sendall(b"NICK\n")
        nick = conn.recv(1024).strip()
        with lock:
            clients.append(conn)
        broadcast(b"*** " + nick + b" joined\n")
        while True:
            chunk = conn.recv(CHUNK)  # a piece of a line, relayed as if it were a message
            if not chunk:
                break
            broadcast(chunk)
    except OSError:
        pass
    with lock:
        if conn in clients:
            clients.remove(conn)
    conn.close()


def main() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    print(f"listening on 127.0.0.1:{server.getsockname()[1]}", flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
