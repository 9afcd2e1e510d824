"""The next step after a thread per client (lesson 6): one thread, many sockets.

`netlab serve --engine selectors` runs the same room, framing, limits and messages as the
threaded server, but one thread asks the system which sockets are ready (`selectors`:
epoll on Linux, kqueue on macOS) and serves only those. No thread per client means no
thread start per connection, a few KiB per client instead of a thread's stack, and no
contention for Python's interpreter lock. Lines queued during one round of the loop go
out together, one send per client. While clients answer within a fraction of a
millisecond (a connect, a nickname, a reset, one after another), the loop polls for a
moment before it sleeps (BusyPoll): waking a sleeping thread costs more than that.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from netlab.chat import protocol as p
from netlab.chat.server import ChatServer, Conn, _send
from netlab.chat.sockets import LINGER_ZERO, LISTENER_OPTIONS_INHERITED, tune
from netlab.diagnose.catalog import format_address

_ACCEPT_BURST = 128  # connections accepted per round, so reads are not starved
_CHECK_EVERY = 0.25  # seconds between handshake-deadline checks
_POLL_WINDOW = 300e-6  # seconds of polling before sleeping, after a short wait
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
T = TypeVar("T")


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class BusyPoll:
    """Poll for a moment before sleeping, while the other side answers fast.

    A thread that sleeps in select() and is woken again costs tens of microseconds,
    more on a virtual machine, and a ping-pong with a client (prompt, nickname, welcome)
    pays it at every turn. After a wait shorter than `window`, the next wait first polls
    for up to `window` without sleeping. A wait that took longer turns polling off until
    a wait is short again, so an idle server sleeps after at most one window, and a
    chat whose lines come every few milliseconds does not poll. (Events already there
    say nothing of how fast the other side answers: they leave the choice as it was.)
    With one CPU the other side cannot answer while we poll: a window of 0 turns
    polling off for good.
    """

    def __init__(self, window: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.window = window
        self.polling = False
        self._clock = clock

    def wait(self, select: Callable[[float | None], list[T]],
             timeout: float | None) -> list[T]:
        """select(timeout), preceded by polls with select(0) while polling is on."""
        events = select(0)
        if events or timeout == 0:
            return events  # no wait at all: nothing learned about the other side
        began = self._clock()
        if self.polling and (timeout is None or timeout > self.window):
            end = began + self.window
            while self._clock() < end:
                events = select(0)
                if events:
                    return events  # a short wait: polling stays on
        events = select(timeout)
        self.polling = self._clock() - began < self.window
        return events


class LoopConn(Conn):
    __slots__ = ("framer", "writing")

    def __init__(self, sock: socket.socket, peer: str, max_line: int) -> None:
        super().__init__(sock, peer)
        self.framer = p.LineFramer(max_line)
        self.writing = False  # also watched for "writable": its kernel buffer was full


class EventLoopServer(ChatServer):
    """Same public interface as ChatServer: bind(), start(), serve_forever(), stop()."""

    hold_notices = False  # each round of the loop batches them already

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closing: list[LoopConn] = []
        self._poll = BusyPoll(_POLL_WINDOW if usable_cpus() > 1 else 0.0)

    def start(self) -> None:
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        self.stats.started = time.monotonic()
        self._housekeeper_due = -math.inf  # no housekeeper: the loop checks deadlines itself
        # The selector exists before start() returns: a server that is up has all its
        # descriptors open (a count taken at once stays true), and a failure to make it
        # is raised here, not lost in a thread.
        self._sel = sel = selectors.DefaultSelector()
        sel.register(self._listener, READ, None)
        sel.register(self._wake_r, READ, "wake")
        for target, name in ((self._log_writer, "netlab-log"), (self._loop, "netlab-loop")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 0.8) -> None:
        if self._stopped.is_set():
            return
        self.request_stop()  # the loop tells every client and closes everything itself
        writer, loop = self._writer_and_others()
        for thread in loop:
            thread.join(timeout)
        self._close_log(writer, 0.5)
        for sock in (self._listener, self._wake_r, self._wake_w, self._accept_wake_r,
                     self._accept_wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._stopped.set()

    def connection_count(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        sel = self._sel
        next_check = time.monotonic() + _CHECK_EVERY
        try:
            while not self._stopping.is_set():
                timeout = max(0.0, next_check - time.monotonic()) if self._handshaking else None
                for key, mask in self._poll.wait(sel.select, timeout):
                    if key.data is None:
                        self._accept_burst()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                    else:
                        conn: LoopConn = key.data
                        if mask & READ and not conn.gone:
                            self._read(conn)
                        if mask & WRITE and not conn.dirty and not conn.discard:
                            conn.dirty = True
                            self._dirty.append(conn)
                self._round()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + _CHECK_EVERY
                    self._end_overdue_handshakes(now)
                    self._round()
        finally:
            self._say_goodbye()
            self._round()
            sel.close()

    def _round(self) -> None:
        """End of a loop round: settle drops, send what was queued, close the departed."""
        self._apply([])  # (returns at once when nobody is to be dropped)
        self._flush_all()
        for conn in self._closing:
            self._close(conn)
        self._closing.clear()

    def _accept_burst(self) -> None:
        assert self._listener is not None
        for _ in range(_ACCEPT_BURST):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            peer = format_address(addr[0], addr[1])
            if len(self._conns) >= self.max_clients:
                self.stats.refused += 1
                self._warn_once("full", f"server full ({self.max_clients} clients); refusing")
                self._refuse(sock, f"server full (max {self.max_clients} clients)")
                continue
            if not LISTENER_OPTIONS_INHERITED:
                tune(sock, self.config.keepalive)
            sock.setblocking(False)
            conn = LoopConn(sock, peer, self.config.max_line)
            self._conns.add(conn)
            self._sel.register(sock, READ, conn)
            self.stats.accepted += 1
            if self.config.trace:
                self._trace(f"accept() -> fd {sock.fileno()} from {peer}")
            self._greet(conn)
            # The prompt goes out now, not after the next accept(), which mostly finds
            # nobody: the client is waiting for it.
            self._flush_all()

    def _read(self, conn: LoopConn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except TimeoutError:
            self._drop(conn, p.Reason.TIMEOUT)  # keepalive probes went unanswered
            return
        except OSError as exc:
            reset = exc.errno == errno.ECONNRESET
            self._drop(conn, p.Reason.RESET if reset else p.Reason.CLOSED)
            return
        if not data:
            self._drop(conn, p.Reason.CLOSED)
            return
        if self.config.trace:
            self._trace(f"recv() {len(data)} bytes from {self._name(conn)}")
        for event in conn.framer.feed(data):
            if conn.gone:
                break
            if isinstance(event, bytes):
                self.stats.lines += 1
                self._receive(conn, event)
            else:
                self._apply(self.room.too_long(conn, event.limit))

    # ------------------------------------------------------------------ sending
    def _broadcast(self, data: bytes, notice: bool) -> None:
        if self.config.trace:  # every send traced, one per member and line
            super()._broadcast(data, notice)
        elif self.room:  # (the last member's departure is news to nobody)
            self._pending.append(data)  # the round's lines go out together at its end

    def _flush_all(self) -> None:
        while self._dirty or self._pending:
            if self._pending:
                self._send_pending()
            for conn, parts in self._take_dirty():
                self._send_parts(conn, parts)  # type: ignore[arg-type]
            self._apply([])

    def _send_parts(self, conn: LoopConn, parts: list[bytes]) -> None:
        self._settle_one(conn, parts, _send(conn.sock, parts) if parts else 0)

    def _settle_one(self, conn: Conn, parts: list[bytes], sent: int) -> None:
        assert isinstance(conn, LoopConn)
        if sent < 0:
            if not conn.gone:
                reset = -sent == errno.ECONNRESET
                self._drop(conn, p.Reason.RESET if reset else p.Reason.CLOSED)
            return
        size = sum(map(len, parts))
        if self.config.trace and parts:
            self._trace(f"send() {sent} of {size} bytes to {self._name(conn)}")
        conn.queued -= sent
        full = sent < size
        if full:
            conn.unsent = b"".join(parts)[sent:]
            if conn.queued > self.config.max_queue:
                self._drop(conn, p.Reason.TOO_SLOW)
                return
        if full != conn.writing and not conn.gone:
            conn.writing = full
            self._sel.modify(conn.sock, READ | WRITE if full else READ, conn)

    # ------------------------------------------------------------------ leaving
    def _dropped(self, conn: Conn) -> None:
        self._closing.append(conn)  # type: ignore[arg-type]  # closed after the round's flush

    def _close(self, conn: LoopConn) -> None:
        """After the round's flush: its last lines (a farewell, a notice) had their try."""
        if conn.closed:
            return
        conn.closed = True
        sock = conn.sock
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(sock)
        if conn.reason == p.Reason.TOO_SLOW:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
        if self.config.trace:
            self._trace(f"close() fd {sock.fileno()} ({conn.reason})")
        with contextlib.suppress(OSError):
            sock.close()
        self._conns.discard(conn)
