"""Reference for exercise 0: a framed chat client (stdin lines out, server lines printed)."""

import os
import socket
import sys
import threading

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
DECODE_CHUNKS = False  # the wrong solution's mistake


def receive(sock: socket.socket) -> None:
    buffer = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            print("*** the server closed the connection")
            os._exit(0)
        if DECODE_CHUNKS:
            chunk = chunk.decode("utf-8", "replace").encode("utf-8")
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            print(line.rstrip(b"\r").decode("utf-8", "replace"))


def main() -> None:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    threading.Thread(target=receive, args=(sock,), daemon=True).start()
    for line in sys.stdin:
        sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
    sock.sendall(b"/quit\n")
    threading.Event().wait(2)


if __name__ == "__main__":
    main()
