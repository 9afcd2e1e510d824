"""Reference for exercise 3: recv_exactly and read_line on one buffer per connection."""

import os
import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
SINGLE_RECV = False  # the wrong solution's mistake


class Stream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError("connection closed")
        self.buffer.extend(chunk)

    def recv_exactly(self, n: int) -> bytes:
        if SINGLE_RECV and len(self.buffer) < n:
            self._fill()
            n = min(n, len(self.buffer))
        while len(self.buffer) < n:
            self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read_line(self) -> str:
        while b"\n" not in self.buffer:
            self._fill()
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end]).rstrip(b"\r")
        del self.buffer[:end + 1]
        return line.decode("utf-8", "replace")


def main() -> None:
    server = socket.create_server((host, port))
    print(f"listening on {host}:{port}", flush=True)
    while True:
        conn, _ = server.accept()
        stream = Stream(conn)
        with conn:
            try:
                while True:
                    line = stream.read_line()
                    if line.startswith("BYTES "):
                        block = stream.recv_exactly(int(line.split()[1]))
                        conn.sendall(b"block: " + block + b"\n")
                    else:
                        conn.sendall(f"echo: {line}\n".encode())
            except (EOFError, ConnectionError):
                pass


if __name__ == "__main__":
    main()
