"""Reference chat server for exercises 1, 4, 5, 6 and 7 (lesson 0's protocol).

Thread per client with one lock around the room; each client has a writer thread and a
bounded outgoing queue, so a client that stops reading is dropped as `too slow` and never
blocks a broadcast. The wrong solutions import this module and change one knob.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import sys
import threading

MAX_LINE = 4096
QUEUE_LIMIT = 1 << 20
REUSE = True
BLOCKING_BROADCAST = False  # the tutorial's mistake, for a wrong solution
LEAVE_ERRORS: tuple[type[BaseException], ...] = (ConnectionResetError, ConnectionAbortedError,
                                                 BrokenPipeError)
OTHER_ERRORS: tuple[type[BaseException], ...] = (OSError,)
NICK_RE = re.compile(r"^[\w.-]{1,16}$")

lock = threading.Lock()
clients: dict[socket.socket, Client] = {}


def explain_bind_error(exc: OSError, host: str, port: int) -> str:
    hint = f"try `netlab diagnose --port {port}`"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind {host}:{port}: {exc.strerror} (this machine has no such address)"
    return f"cannot listen on {host}:{port}: {exc.strerror} (errno {exc.errno}); {hint}"


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.nick = ""
        self.cond = threading.Condition()
        self.queue: list[bytes | None] = []
        self.queued = 0
        self.gone = False
        threading.Thread(target=self.writer, daemon=True).start()

    def put(self, data: bytes | None) -> None:
        if BLOCKING_BROADCAST and data is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)
            return
        with self.cond:
            if self.gone:
                return
            if data is not None and self.queued + len(data) > QUEUE_LIMIT:
                self.gone = True
                self.queue = [None]
                self.cond.notify()
                threading.Thread(target=leave, args=(self, "too slow"), daemon=True).start()
                return
            self.queue.append(data)
            self.queued += len(data or b"")
            self.cond.notify()

    def writer(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                data = self.queue.pop(0)
                self.queued -= len(data or b"")
            if data is None:
                break
            try:
                self.sock.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread's recv()


def line(text: str) -> bytes:
    return text.encode("utf-8") + b"\r\n"


def broadcast(text: str) -> None:
    with lock:
        for c in list(clients.values()):
            c.put(line(text))


def leave(client: Client, reason: str) -> None:
    with lock:
        if clients.pop(client.sock, None) is None:
            return
        for c in [*clients.values(), client]:
            c.put(line(f"*** {client.nick} left ({reason})"))
        client.put(None)


def lines_of(sock: socket.socket, client: Client):  # type: ignore[no-untyped-def]
    """Frame on \\n with a limit; yields decoded lines; b'' ends it."""
    buffer = bytearray()
    discarding = False
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer.extend(chunk)
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_LINE:
                    if not discarding:
                        client.put(line(f"! line too long (max {MAX_LINE} bytes)"))
                    discarding = True
                    buffer.clear()
                break
            raw = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[:end + 1]
            if discarding or len(raw) > MAX_LINE:
                if not discarding:
                    client.put(line(f"! line too long (max {MAX_LINE} bytes)"))
                discarding = False
                continue
            yield raw.decode("utf-8", "replace")


def serve(sock: socket.socket) -> None:
    client = Client(sock)
    reason = "closed"
    try:
        client.put(line("NICK"))
        reader = lines_of(sock, client)
        for text in reader:
            if not client.nick:
                nick = text.strip()
                with lock:
                    taken = any(c.nick.casefold() == nick.casefold() for c in clients.values())
                    if not NICK_RE.match(nick) or taken:
                        client.put(line("! nickname not valid or taken"))
                        client.put(line("NICK"))
                        continue
                    client.nick = nick
                    clients[sock] = client
                    client.put(line(f"*** Welcome, {nick}! {len(clients)} online"))
                    for c in clients.values():
                        c.put(line(f"*** {nick} joined"))
                continue
            if text == "/quit":
                reason = "quit"
                break
            if text:
                broadcast(f"{client.nick}: {text}")
    except LEAVE_ERRORS:
        reason = "reset"
    except OTHER_ERRORS:
        reason = "closed"
    if client.nick:
        leave(client, reason)
    else:
        client.put(None)


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NETLAB_HOST", "127.0.0.1")
    port = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("NETLAB_PORT", "55555"))
    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl-Break is how the check says Ctrl-C
        signal.signal(signal.SIGBREAK, signal.default_int_handler)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sys.platform.startswith("win"):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
    elif REUSE:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, port))
        server.listen(128)
    except OSError as exc:
        print(explain_bind_error(exc, host, port), file=sys.stderr)
        return 1
    print(f"listening on {host}:{port}", flush=True)
    try:
        while True:
            sock, _ = server.accept()
            threading.Thread(target=serve, args=(sock,), daemon=True).start()
    except KeyboardInterrupt:
        pass
    with lock:
        for c in clients.values():
            c.put(line("*** server shutdown"))
            c.put(None)
    server.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
