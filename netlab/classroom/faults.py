"""The seeded faults of the troubleshooting drills, each produced for real.

loopback-only     a working chat server bound to 127.0.0.1 only
wrong-port        the announced port is held but not listening; the server is one port up
backlog-full      listen(0), the queue filled by the server's own connections, never accept()
silent-handshake  accepts and never sends NICK
reset-after-join  answers NICK, welcomes, then resets the connection (RST)
slow-broadcast    every broadcast goes out seconds late
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Hashable

from netlab.chat import protocol as p
from netlab.chat.room import Action, Broadcast, Joined, Room
from netlab.chat.server import ChatServer, Conn, ServerConfig
from netlab.classroom.drills import FAULTS
from netlab.diagnose.catalog import socket_problem

_LINGER_ZERO = struct.pack("ii", 1, 0)  # close() then sends RST instead of FIN


class _Later:
    """An action the drill server performs after a delay, off the room lock."""

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run


class DrillRoom(Room):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def connect(self, who: Hashable) -> list[Action]:
        if self.mode == "silent-handshake":
            self._waiting.add(who)
            return []  # the fault: NICK is never sent
        return super().connect(who)

    def receive(self, who: Hashable, line: bytes) -> list[Action]:
        if self.mode == "silent-handshake":
            return []
        return super().receive(who, line)


class DrillServer(ChatServer):
    """A chat server with one deliberate misbehaviour, done by a delay thread."""

    def __init__(self, config: ServerConfig, mode: str, delay: float) -> None:
        super().__init__(config)
        self.room = DrillRoom(mode)
        self.mode = mode
        self.delay = delay
        self._later: queue.SimpleQueue[tuple[float, Callable[[], None]] | None] = (
            queue.SimpleQueue())

    def start(self) -> None:
        super().start()
        threading.Thread(target=self._delayer, daemon=True, name="netlab-drill").start()

    def stop(self, timeout: float = 0.8) -> None:
        self._later.put(None)
        super().stop(timeout)

    def _apply(self, actions: list[Action]) -> None:
        now = time.monotonic()
        kept: list[Action] = []
        for action in actions:
            if self.mode == "slow-broadcast" and type(action) is Broadcast:
                # Later, through the server's own broadcast (not this method: no new delay).
                self._later.put((now + self.delay,
                                 lambda a=action: ChatServer._apply(self, [a])))  # type: ignore[misc]
                continue
            if self.mode == "reset-after-join" and type(action) is Joined:
                conn = action.who
                self._later.put((now + self.delay, lambda c=conn: self._reset(c)))  # type: ignore[misc]
            kept.append(action)
        super()._apply(kept)

    def _delayer(self) -> None:
        # One FIFO with one delay keeps the order of the delayed broadcasts.
        while True:
            item = self._later.get()
            if item is None:
                return
            due, run = item
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return
            with self._lock:
                run()

    def _reset(self, conn: Conn) -> None:
        if conn.gone:
            return
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        super()._apply(self.room.disconnect(conn, p.Reason.RESET))
        # Marked gone without shutdown(SHUT_RDWR), which would send a FIN first; SHUT_RD
        # only wakes the reader, whose close() then sends the RST.
        self._drop(conn, p.Reason.QUIT, announce=False)
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RD)


def _reusable_socket(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and sockaddr[0] == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise socket_problem(exc, "bind", host, port) from None
    return sock


class FaultEndpoint:
    """One fault at one announced port. start() returns the announced port."""

    def __init__(self, fault: str, host: str, port: int, delay: float = 2.0) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault}")
        self.fault, self.host, self.port, self.delay = fault, host, port, delay
        self.announced: int | None = None
        self.real_port: int | None = None  # where something really listens, if anywhere
        self._servers: list[ChatServer] = []
        self._socks: list[socket.socket] = []

    def start(self) -> int:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        assert self.announced is not None
        return self.announced

    def _chat(self, host: str, port: int, server: ChatServer | None = None) -> int:
        srv = server or ChatServer(ServerConfig(host=host, port=port))
        self._servers.append(srv)
        bound = srv.bind()[1]
        srv.start()
        return bound

    def _start(self) -> None:
        fault, host = self.fault, self.host
        if fault == "loopback-only":
            loop = "::1" if host not in ("0.0.0.0", "::") and ":" in host else "127.0.0.1"
            self.announced = self.real_port = self._chat(loop, self.port)
        elif fault == "wrong-port":
            # Bound but not listening: connections to it are refused, nothing else takes it.
            hold = _reusable_socket(host, self.port)
            self._socks.append(hold)
            self.announced = hold.getsockname()[1]
            try:
                self.real_port = self._chat(host, self.announced % 65535 + 1)
            except Exception:
                self.real_port = self._chat(host, 0)
        elif fault == "backlog-full":
            listener = _reusable_socket(host, self.port)
            self._socks.append(listener)
            listener.listen(0)  # Linux then queues one connection; the next SYNs are dropped
            self.announced = self.real_port = listener.getsockname()[1]
            self._fill(listener)
        else:
            config = ServerConfig(host=host, port=self.port)
            delay = self.delay if fault == "slow-broadcast" else 0.3  # reset: just after
            self.announced = self.real_port = self._chat(
                host, self.port, DrillServer(config, fault, delay))

    def _fill(self, listener: socket.socket) -> None:
        """Connect to ourselves until a connect times out: the accept queue is then full."""
        # The wildcard is reached through loopback ('::' also takes IPv4).
        target = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        port = listener.getsockname()[1]
        for _ in range(16):
            sock = socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET)
            sock.settimeout(0.25)
            try:
                sock.connect((target, port))
            except OSError:
                sock.close()
                return
            self._socks.append(sock)

    def stop(self) -> None:
        for srv in self._servers:
            with contextlib.suppress(Exception):
                srv.stop()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._servers.clear()
        self._socks.clear()
