"""Exercise 3: recv_exactly() and read_line() on top of a buffer.

Check it:  netlab check 3 -- python my_server.py {host} {port}

The server answers one client at a time:
  - each line TEXT          -> it sends back  `echo: TEXT\\n`
  - a line `BYTES n`, then exactly n more bytes (no newline after them)
                            -> it sends back  `block: <the n bytes>\\n`
  - when a client closes in the middle, recv_exactly raises EOFError: close that
    connection and serve the next client.
The check sends a line one byte at a time, many lines in one packet, and a block in pieces.
"""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    return sock.recv(n)             # TODO: loop until n bytes; EOFError on b''


def read_line(sock: socket.socket) -> str:
    return sock.recv(1024).decode()  # TODO: a buffer; one recv() is not one line


server = socket.create_server((host, port))
print(f"listening on {host}:{port}", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        while True:
            line = read_line(conn).strip()
            if not line:
                break
            if line.startswith("BYTES "):
                block = recv_exactly(conn, int(line.split()[1]))
                conn.sendall(b"block: " + block + b"\n")
            else:
                conn.sendall(f"echo: {line}\n".encode())
