"""The threaded chat server: a thin socket shell around the pure Room.

The design the classic exercise teaches, made robust:
- one accept loop, one reader thread per client (it also runs that client's handshake, so a
  silent client never blocks the accept loop or anyone else);
- one lock around the room; every action (send to one, broadcast) is performed while it is
  held, so all clients see one order of messages;
- sends never block: each delivery is a non-blocking send() straight from the thread that
  produced it (a microsecond or two); what the kernel does not take waits in that client's
  bounded backlog, drained by a single housekeeper thread when the socket becomes writable.
  A client whose backlog passes --max-queue is dropped as "too slow", so one client that
  stops reading can never freeze a broadcast (the tutorial server's blocking sendall does);
- the housekeeper also ends handshakes that take longer than --handshake-timeout.
"""

from __future__ import annotations

import contextlib
import errno
import math
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netlab.chat import protocol as p
from netlab.chat.room import Action, Broadcast, Close, Joined, Left, Room, Send
from netlab.chat.sockets import (
    ACCEPTED_SOCKETS_BLOCK,
    DONTWAIT,
    IS_WINDOWS,
    LINGER_ZERO,
    LISTENER_OPTIONS_INHERITED,
    Waiter,
    devnull,
    raise_fd_limit,
    tune,
    wake_pair,
)
from netlab.diagnose.catalog import format_address, socket_problem
from netlab.timefmt import now_text

# A reader blocked in recv() holds its buffer, and a 64 KiB one costs each waiting thread
# about 8 KiB of resident memory (measured: 24 KiB per idle thread instead of 18 with 1 KiB).
# Idle readers wait with a small buffer; one that comes back full means more is on its
# way, and the next read takes up to 16 KiB. Not 64: reads of 64 KiB, shrunk to what
# arrived, fragmented the thread's heap, and a 10 MB line grew the server by up to 1 MiB
# (16 KiB reads: under 150 KiB).
_RECV_IDLE = 1024
_RECV_SIZE = 16384
_THREAD_STACK = 256 * 1024  # a reader thread needs little; 8 MiB default x 10,000 threads
_FD_MARGIN = 64  # fds kept for the listener, logs, pipes and the spare used to refuse


@dataclass
class ServerConfig:
    host: str = p.DEFAULT_HOST
    port: int = p.DEFAULT_PORT
    max_clients: int | None = None  # None: 10,000 or the fd limit minus a margin
    max_line: int = p.MAX_LINE
    max_queue: int = 1024 * 1024
    handshake_timeout: float = 30.0
    keepalive: bool = True
    trace: bool = False
    # Small thread stacks: 10,000 readers x 8 MiB would reserve 80 GiB of address space.
    # The setting is process-wide, so only `netlab serve`, which owns its process, uses it.
    small_stacks: bool = False


@dataclass
class Stats:
    started: float = 0.0
    accepted: int = 0
    joined: int = 0
    peak_online: int = 0
    lines: int = 0
    refused: int = 0
    dropped_slow: int = 0


class Conn:
    """One client connection: its socket and the bytes still on their way to it."""

    __slots__ = ("closed", "deadline", "dirty", "discard", "gone", "held", "out", "peer",
                 "queued", "reason", "shut", "sock", "unsent")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.out: list[bytes] = []  # delivered, not yet handed to the kernel
        self.unsent = b""  # what the kernel did not take last time (its buffer was full)
        self.queued = 0  # bytes in out + unsent: what --max-queue bounds
        self.dirty = False  # listed for the next flush
        self.held = False  # has notices waiting for the housekeeper's next round
        self.gone = False  # left the room: no new deliveries
        self.discard = False  # dropped for an error or slowness: nothing more is sent
        self.shut = False  # shutdown() done: its reader has been woken
        self.closed = False  # its reader closed the socket
        self.reason = p.Reason.CLOSED
        self.deadline = 0.0  # end of the handshake allowance

    def __repr__(self) -> str:
        return f"<Conn {self.peer}>"


# A log sink gets one or more lines at a time, joined by "\n" (no final newline): the
# writer hands over everything logged since its last round in one call, one write().
Logger = Callable[[str], None]
# An event sink gets the events (joins, leaves) logged since the writer's last round, as
# dicts with a "type": what `serve --json` prints, one JSON line each.
EventSink = Callable[[list[dict[str, Any]]], None]
_FLUSH_DELAY = 0.002  # the longest a contended lock may hold back queued lines, seconds
_NOTICE_DELAY = 0.02  # the longest a join/leave notice may wait for company, seconds
_POOL_IDLE_MAX = 64  # reader threads kept waiting for the next client...
_POOL_IDLE_SECONDS = 2.0  # ...for this long, then they end (thread count back to baseline)
_LOG_MAX = 10000  # log lines waiting for the writer; beyond that they are counted, not kept
_LOG_BATCH = 0.02  # after a write the log writer naps: a burst of lines costs one wake-up


class RoomLock:
    """The lock around the room. Leaving it flushes what the locked sections delivered.

    A broadcast made while nothing is queued and nobody waits for the lock is sent at
    once (ChatServer._send_to_members). Otherwise deliveries only queue bytes (a list
    append), and the thread leaving the lock sends them, still holding it, unless other
    threads are waiting for the lock: then the last of them sends everything at once,
    each client's lines in one send(). Under load that batches several lines per packet,
    as Nagle's algorithm would, without its 40 ms wait (RFC 896). Sending under the lock
    keeps the waiting threads off the GIL, so the sending thread is not slowed by them.
    """

    __slots__ = ("_server", "_waiters", "raw")

    def __init__(self, server: ChatServer) -> None:
        self.raw = threading.Lock()
        self._server = server
        self._waiters: list[None] = []  # append/pop are atomic: a count without a lock

    def __enter__(self) -> RoomLock:
        self._waiters.append(None)
        self.raw.acquire()
        self._waiters.pop()
        return self

    def waiting(self) -> bool:
        """Another thread is waiting for the lock (call with it held)."""
        return bool(self._waiters)

    def __exit__(self, *exc: object) -> None:
        server = self._server
        try:
            if (server._dirty or server._pending) and (
                not self._waiters or time.monotonic() - server._dirty_since > _FLUSH_DELAY
            ):
                server._flush()
        finally:
            self.raw.release()


class ChatServer:
    hold_notices = True  # notices wait for the housekeeper's round (see _NOTICE_DELAY)

    def __init__(self, config: ServerConfig | None = None, log: Logger | None = None,
                 on_events: EventSink | None = None) -> None:
        self.config = config or ServerConfig()
        self.room = Room()
        self.stats = Stats()
        self.address: tuple[str, int] | None = None
        self.max_clients = 0
        self._log_sink = log
        self._event_sink = on_events
        self._log_lines: deque[str | dict[str, Any]] = deque()  # log lines and events
        self._log_ready = threading.Event()
        self._log_closed = False
        self._log_dropped = 0
        self._lock = RoomLock(self)
        self._flushed = threading.Condition(self._lock.raw)  # a flush round finished
        self._dirty: list[Conn] = []  # connections with queued bytes, in order
        self._dirty_since = 0.0
        # Broadcasts not yet queued per member: the next flush sends them to each member in
        # one send(). Queued per member first (_spread) whenever something else could come
        # between them and a client: a private line, or a change of who is in the room.
        self._pending: list[bytes] = []
        # Connections holding only notices. In a burst of joins every client would get one
        # packet per join (N joins, N² packets); held back up to _NOTICE_DELAY, the notices
        # of a burst share packets.
        self._held: list[Conn] = []
        self._held_since = 0.0
        self._listener: socket.socket | None = None
        self._conns: set[Conn] = set()  # every accepted connection not yet closed
        self._handshaking: set[Conn] = set()
        self._backlogged: set[Conn] = set()
        self._to_drop: list[tuple[Conn, str]] = []
        self._dropping = False  # an _apply() up the stack is working through _to_drop
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        # Wake-up pairs: one for the housekeeper (new backlog, new deadline, stop), one for
        # the accept loop (stop). poll() on them costs no CPU while nothing happens.
        self._wake_r, self._wake_w = wake_pair()
        self._accept_wake_r, self._accept_wake_w = wake_pair()
        self._woken = False
        self._housekeeper_due = math.inf  # when the housekeeper looks again without a wake
        self._last_deadline = 0.0  # of the newest handshake
        self._threads: list[threading.Thread] = []
        self._jobs: queue.SimpleQueue[Conn | None] = queue.SimpleQueue()  # for idle readers
        self._idle = 0  # reader threads waiting in _jobs
        self._pool_lock = threading.Lock()
        self._readers: set[threading.Thread] = set()
        self._spare_fd: Any = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ life cycle
    def bind(self) -> tuple[str, int]:
        """Bind and listen; returns the real (host, port). Raises SocketProblem."""
        host, port = self.config.host, self.config.port
        try:
            infos = socket.getaddrinfo(
                host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise socket_problem(exc, "bind", host, port) from None
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if IS_WINDOWS:
                # On Windows SO_REUSEADDR would let another program bind the same port and
                # steal connections; SO_EXCLUSIVEADDRUSE forbids that (and restarts work).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
            else:
                # POSIX: bind even while the last run's connections sit in TIME_WAIT
                # (RFC 9293 3.6.1); it never lets two servers listen on one port.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and sockaddr[0] == "::" and socket.has_dualstack_ipv6():
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            tune(sock, self.config.keepalive)  # inherited by accepted sockets on Linux
            # A short backlog stalls bursts of connects for a second (SYN cookies kick in).
            sock.listen(max(socket.SOMAXCONN, 4096))
            sock.setblocking(False)  # the accept loop polls, so stop() can wake it
        except OSError as exc:
            sock.close()
            raise socket_problem(exc, "bind", host, port) from None
        self._listener = sock
        bound = sock.getsockname()
        self.address = (bound[0], bound[1])
        self.max_clients = self._capacity()
        return self.address

    def start(self) -> None:
        """Start the accept loop, the housekeeper and the log writer (all up front)."""
        if self._listener is None:
            self.bind()
        self.stats.started = time.monotonic()
        try:
            self._spare_fd = open(devnull(), "rb")  # noqa: SIM115 - kept open on purpose
        except OSError:
            self._spare_fd = None
        if self.config.small_stacks:
            threading.stack_size(_THREAD_STACK)
        for target, name in (
            (self._log_writer, "netlab-log"),
            (self._housekeeper, "netlab-housekeeper"),
            (self._accept_loop, "netlab-accept"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def serve_forever(self) -> None:
        """Block until stop() or Ctrl-C. Elsewhere a signal interrupts the wait, so an idle
        server wakes no thread at all; Windows needs a timeout to let Ctrl-C through."""
        timeout = 0.25 if IS_WINDOWS else None
        while not self._stopping.wait(timeout):
            pass

    def request_stop(self) -> None:
        """Safe from a signal handler: takes no lock."""
        self._stopping.set()
        for pipe in (self._wake_w, self._accept_wake_w):
            with contextlib.suppress(OSError):
                pipe.send(b"x")

    def stop(self, timeout: float = 0.8) -> None:
        """Tell every client, close everything, return within about a second."""
        if self._stopped.is_set():
            return
        self.request_stop()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            self._say_goodbye()
            self._to_drop.clear()
            self._wake()
        with self._pool_lock:
            for _ in range(self._idle):
                self._jobs.put(None)  # idle reader threads end now
        deadline = time.monotonic() + timeout
        with self._lock:
            readers = list(self._readers)
        writer, workers = self._writer_and_others()
        for thread in [*workers, *readers]:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        # The log writer goes last, so the departures logged above are still written.
        self._close_log(writer, max(0.2, deadline - time.monotonic()))
        for sock in (self._wake_r, self._wake_w, self._accept_wake_r, self._accept_wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        if self._spare_fd is not None:
            self._spare_fd.close()
        self._stopped.set()

    @property
    def online(self) -> int:
        return len(self.room)

    def connection_count(self) -> int:
        with self._lock:
            return len(self._conns)

    # ------------------------------------------------------------------ logging
    def log(self, text: str) -> None:
        """Queue a log line. The writer thread prints it, so a stuck terminal or an unread
        pipe never blocks a thread that holds the room lock."""
        self._queue_log(text)

    def _event(self, kind: str, **fields: Any) -> None:
        """Queue an event for the event sink, in order with the log lines."""
        if self._event_sink is not None:
            self._queue_log({"type": kind, "t": now_text(), **fields})

    def _queue_log(self, item: str | dict[str, Any]) -> None:
        if len(self._log_lines) >= _LOG_MAX:
            self._log_dropped += 1
            return
        self._log_lines.append(item)
        if not self._log_ready.is_set():
            self._log_ready.set()

    def _trace(self, text: str) -> None:
        if self.config.trace:
            self.log(f"trace: {text}")

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log(text)

    def _log_writer(self) -> None:
        lines = self._log_lines
        while True:
            self._log_ready.wait()
            self._log_ready.clear()  # before draining: a line logged from now on sets it
            batch: list[str] = []
            events: list[dict[str, Any]] = []
            while lines:
                item = lines.popleft()
                if isinstance(item, str):
                    batch.append(item)
                else:
                    events.append(item)
            if self._log_dropped:
                dropped, self._log_dropped = self._log_dropped, 0
                batch.append(f"({dropped} log lines skipped: the log was not read fast enough)")
            if batch and self._log_sink is not None:
                # One write for the whole batch: each write releases the interpreter lock,
                # and a write per line made this thread trade the lock with the handshaking
                # threads twice per line (churn: a third of the server's CPU, in futex calls).
                with contextlib.suppress(Exception):
                    self._log_sink("\n".join(batch))
            if events and self._event_sink is not None:
                with contextlib.suppress(Exception):
                    self._event_sink(events)
            if self._log_closed:
                break
            # Waking a thread per line costs more than the line: at 2,000 joins a second
            # that was half the server's CPU. Lines logged during the nap share one wake.
            time.sleep(_LOG_BATCH)

    def _writer_and_others(self) -> tuple[threading.Thread | None, list[threading.Thread]]:
        """The log writer (started first) and the server's other threads."""
        if not self._threads:
            return None, []
        return self._threads[0], self._threads[1:]

    def _close_log(self, writer: threading.Thread | None, timeout: float) -> None:
        """Stop the log writer once it has written every line logged so far."""
        self._log_closed = True
        self._log_ready.set()
        if writer is not None:
            writer.join(timeout)

    # ------------------------------------------------------------------ accepting
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        waiter = Waiter()
        while not self._stopping.is_set():
            if not waiter.readable([listener, self._accept_wake_r]):
                continue
            if self._stopping.is_set():
                break
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                self._accept_failed(exc)
                continue
            # POSIX: reader threads block in recv(), sends pass MSG_DONTWAIT. Windows has no
            # such flag: the socket is non-blocking and readers wait in select(). On Linux
            # the accepted socket is blocking already (one syscall less per connection).
            if not ACCEPTED_SOCKETS_BLOCK:
                sock.setblocking(not IS_WINDOWS)
            self._admit(sock, addr)

    def _accept_failed(self, exc: OSError) -> None:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            # Out of file descriptors: free the spare one for a moment to accept and
            # refuse the newcomer with a line, instead of leaving it hanging in the
            # backlog while accept() fails in a tight loop.
            self._warn_once("fds", f"out of file descriptors ({exc.strerror}); refusing")
            if self._spare_fd is not None and self._listener is not None:
                self._spare_fd.close()
                try:
                    sock, _ = self._listener.accept()
                    self._refuse(sock, "server is out of resources, try again later")
                except OSError:
                    pass
                finally:
                    try:
                        self._spare_fd = open(devnull(), "rb")  # noqa: SIM115
                    except OSError:
                        self._spare_fd = None
            time.sleep(0.05)  # back off instead of spinning
        elif exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EAGAIN):
            pass  # the client gave up before we accepted it: nothing to do
        else:
            self._warn_once(f"accept{exc.errno}", f"accept failed: {exc}")
            time.sleep(0.05)

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        peer = format_address(addr[0], addr[1])
        if not LISTENER_OPTIONS_INHERITED:
            tune(sock, self.config.keepalive)
        conn = Conn(sock, peer)
        with self._lock:  # leaving it sends the prompt
            full = len(self._conns) >= self.max_clients
            if not full:
                if self.config.trace:
                    self._trace(f"accept() -> fd {sock.fileno()} from {peer}")
                self._conns.add(conn)
                # The accept loop greets, not the reader thread: the prompt is on its way
                # while that thread wakes up, and it is out before any line can be read.
                self._greet(conn)
        if full:
            self.stats.refused += 1
            self._warn_once("full", f"server full ({self.max_clients} clients); refusing")
            self._refuse(sock, f"server full (max {self.max_clients} clients)")
            return
        # A thread whose client left waits a moment for the next one: starting a thread
        # costs about 120 µs, and the accept loop would wait for each start.
        with self._pool_lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1
                self._jobs.put(conn)
        if not reuse:
            try:
                threading.Thread(target=self._worker, args=(conn,), daemon=True).start()
            except RuntimeError:  # can't start new thread
                with self._lock:
                    self._forget(conn)
                self._warn_once("threads", "cannot start more threads; refusing newcomers")
                self._refuse(sock, "server busy, try again later")
                time.sleep(0.05)
                return
        self.stats.accepted += 1

    def _greet(self, conn: Conn) -> None:
        """A new connection: the handshake's clock starts, the room sends the prompt."""
        conn.deadline = self._last_deadline = time.monotonic() + self.config.handshake_timeout
        if conn.deadline + 0.01 < self._housekeeper_due:
            self._wake()  # the housekeeper would look too late for this deadline
        self._handshaking.add(conn)
        self._apply(self.room.connect(conn))

    def _forget(self, conn: Conn) -> None:
        """Undo _greet and _admit for a connection no thread will serve (lock held)."""
        conn.gone = conn.discard = conn.closed = True
        conn.out, conn.unsent, conn.queued = [], b"", 0
        self._handshaking.discard(conn)
        self.room.disconnect(conn, p.Reason.CLOSED)
        self._conns.discard(conn)

    def _refuse(self, sock: socket.socket, why: str) -> None:
        with contextlib.suppress(OSError):
            sock.send(p.encode_line(p.error_line(why)), DONTWAIT)
        with contextlib.suppress(OSError):
            sock.close()

    # ------------------------------------------------------------------ one client
    def _worker(self, conn: Conn | None) -> None:
        """A reader thread: serves one client, then waits briefly for the next one."""
        while conn is not None:
            with self._lock.raw:
                self._readers.add(threading.current_thread())
            self._client(conn)
            with self._pool_lock:
                if self._idle >= _POOL_IDLE_MAX or self._stopping.is_set():
                    return
                self._idle += 1
            try:
                conn = self._jobs.get(timeout=_POOL_IDLE_SECONDS)
            except queue.Empty:
                with self._pool_lock:  # a job may have come just as the wait ended
                    try:
                        conn = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return

    def _client(self, conn: Conn) -> None:
        sock = conn.sock
        framer = p.LineFramer(self.config.max_line)
        reason = p.Reason.CLOSED
        waiter = Waiter() if IS_WINDOWS else None
        size = _RECV_IDLE
        try:
            while True:
                if waiter is not None and not waiter.readable([sock]):
                    continue
                data = sock.recv(size)
                if not data:
                    break
                size = _RECV_SIZE if len(data) == size else _RECV_IDLE
                if self.config.trace:
                    self._trace(f"recv() {len(data)} bytes from {self._name(conn)}")
                events = framer.feed(data)
                if not events:
                    continue
                with self._lock:
                    if conn.gone:
                        break
                    for event in events:
                        if isinstance(event, bytes):
                            self.stats.lines += 1
                            self._receive(conn, event)
                        else:
                            self._apply(self.room.too_long(conn, event.limit))
                        if conn.gone:
                            break
                    if conn.gone:
                        break
        except ConnectionResetError:
            reason = p.Reason.RESET
        except TimeoutError:
            reason = p.Reason.TIMEOUT  # keepalive probes went unanswered
        except OSError as exc:
            reason = p.Reason.RESET if exc.errno == errno.ECONNRESET else p.Reason.CLOSED
        with self._lock:
            conn.shut = True  # this thread is awake and closes the socket next: no shutdown()
            self._drop(conn, reason)
        self._finish(conn)

    def _finish(self, conn: Conn) -> None:
        """Close the socket (after /quit's farewell is out, or a second has passed)."""
        sock = conn.sock
        with self._lock.raw:
            deadline = time.monotonic() + 1.0
            while conn.reason == p.Reason.QUIT and (conn.out or conn.unsent):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._flushed.wait(min(left, 0.05))
            conn.closed = conn.discard = True
            conn.out, conn.unsent = [], b""
            self._backlogged.discard(conn)
            if conn.reason == p.Reason.TOO_SLOW:
                # Close with RST: the kernel frees the megabytes queued for a peer that
                # isn't reading at once, instead of keeping them in an orphaned socket.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            if self.config.trace:
                self._trace(f"close() fd {sock.fileno()} ({conn.reason})")
            # Closed under the lock: no flush can pick this socket (or a new one that
            # reuses its fd number) afterwards.
            with contextlib.suppress(OSError):
                sock.close()
            self._conns.discard(conn)
            self._readers.discard(threading.current_thread())

    def _name(self, conn: Conn) -> str:
        return self.room.nick(conn) or conn.peer

    # ------------------------------------------------------------------ actions (lock held)
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is Broadcast:
                self._broadcast(action.data, action.notice)  # type: ignore[union-attr]
            elif kind is Send:
                self._deliver(action.to, action.data)  # type: ignore[union-attr, arg-type]
            elif kind is Joined:
                conn = action.who  # type: ignore[union-attr]
                self._handshaking.discard(conn)  # type: ignore[arg-type]
                self.stats.joined += 1
                self.stats.peak_online = max(self.stats.peak_online, len(self.room))
                self.log(f"+ {action.nick} joined from {conn.peer} ({len(self.room)} online)")  # type: ignore[union-attr]
                self._event("join", nick=action.nick, peer=conn.peer, online=len(self.room))  # type: ignore[union-attr]
            elif kind is Left:
                self.log(f"- {action.nick} left ({action.reason}; {len(self.room)} online)")  # type: ignore[union-attr]
                self._event("leave", nick=action.nick, reason=str(action.reason),  # type: ignore[union-attr]
                            online=len(self.room))
            elif kind is Close:
                self._drop(action.who, action.reason)  # type: ignore[union-attr, arg-type]
        # Deliveries may have found dead or too-slow clients; dropping them broadcasts
        # their departure, which may find more: loop until nothing is left. Only the
        # outermost call loops: the nested ones (from _drop) would otherwise recurse two
        # frames deep per dead client, and a flush that finds 500 dead peers would raise
        # RecursionError in the thread doing it.
        if self._dropping or not self._to_drop:
            return
        self._dropping = True
        try:
            while self._to_drop:
                conn, reason = self._to_drop.pop()
                self._drop(conn, reason)
        finally:
            self._dropping = False

    def _receive(self, conn: Conn, line: bytes) -> None:
        """One line from a client, to the room (lock held)."""
        if self._pending and (self.room.nick(conn) is None or line.lstrip().startswith(b"/")):
            # A nickname may make a member, a command may end one (/quit): the pending
            # lines go to the members they were said to.
            self._spread()
        self._apply(self.room.receive(conn, line))

    def _broadcast(self, data: bytes, notice: bool) -> None:
        if self.config.trace or (notice and self.hold_notices):
            for member in self.room.member_view():  # (_deliver spreads pending lines first)
                self._deliver(member, data, notice)  # type: ignore[arg-type]
        elif not self._pending and not self._dirty and not self._lock.waiting():
            self._send_to_members(data)  # nothing to combine it with: out at once
        else:
            # Others wait for the lock: their lines will join this one, and the last of
            # them sends all of them to each member in one send().
            if not self._pending and not self._dirty:
                self._dirty_since = time.monotonic()
            self._pending.append(data)

    def _spread(self) -> None:
        """Queue the pending broadcasts for each member, as _deliver would have."""
        lines, self._pending = self._pending, []
        data = b"".join(lines)
        since, was_dirty = self._dirty_since, bool(self._dirty)
        for member in self.room.member_view():
            self._deliver(member, data)  # type: ignore[arg-type]
        if not was_dirty:
            self._dirty_since = since  # the wait began with the first pending line

    def _send_to_members(self, data: bytes) -> None:
        """Send bytes to every member at once, bookkeeping only for the few that need it.

        Used for a broadcast with nothing to combine it with, and at each flush for the
        pending broadcasts, joined. Queueing them per member instead made one line to 1,000
        clients cost 5 ms instead of 3 (at 200 lines/s, a saturated server). Members with
        bytes still queued (held notices, a full kernel buffer) get the bytes queued behind
        them, so each client's order holds.
        """
        size = len(data)
        short: list[tuple[Conn, int]] = []
        for conn in self.room.member_view():
            if conn.out or conn.unsent or conn.gone or conn.dirty:  # type: ignore[attr-defined]
                self._deliver(conn, data)  # type: ignore[arg-type]
                continue
            try:
                sent = conn.sock.send(data, DONTWAIT)  # type: ignore[attr-defined]
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                sent = -(exc.errno or errno.EPIPE)
            if sent != size:
                short.append((conn, sent))  # type: ignore[arg-type]
        # A full buffer or a dead peer, as after any flush; settled after the loop, since
        # settling may drop a client, and the room must not change while it is walked.
        for conn, sent in short:
            conn.queued += size
            self._settle_one(conn, [data], sent)

    def _deliver(self, conn: Conn, data: bytes, notice: bool = False) -> None:
        """Queue bytes for one client; the flush when the lock is left sends them."""
        if self._pending:
            self._spread()  # the pending broadcasts came first
        if conn.gone:
            return
        conn.out.append(data)
        conn.queued += len(data)
        if conn.unsent:
            # Its kernel buffer is full: it waits for the socket to become writable, and
            # what piles up meanwhile is what --max-queue bounds.
            if conn.queued > self.config.max_queue:
                self._to_drop.append((conn, p.Reason.TOO_SLOW))
        elif notice and self.hold_notices:
            if not conn.dirty and not conn.held:
                conn.held = True
                if not self._held:
                    self._held_since = time.monotonic()
                    self._wake()  # the housekeeper sends them in _NOTICE_DELAY at most
                self._held.append(conn)
        elif not conn.dirty:
            conn.dirty = True
            if not self._dirty:
                self._dirty_since = time.monotonic()
            self._dirty.append(conn)

    def _drop(self, conn: Conn, reason: str, announce: bool = True) -> None:
        """Remove a client from the room (once); its reader thread closes the socket."""
        if conn.gone:
            return
        if self._pending:
            self._spread()  # a leaving member still gets what was said before it left
        conn.gone = True
        conn.reason = reason
        self._handshaking.discard(conn)
        if reason in (p.Reason.TOO_SLOW, p.Reason.RESET, p.Reason.CLOSED):
            conn.discard = True  # nobody is listening: what is queued goes nowhere
            conn.out, conn.unsent, conn.queued = [], b"", 0
            self._backlogged.discard(conn)
        if reason == p.Reason.TOO_SLOW:
            self.stats.dropped_slow += 1
        actions = self.room.disconnect(conn, reason)
        if announce:
            self._apply(actions)
        self._dropped(conn)

    def _dropped(self, conn: Conn) -> None:
        """Arrange the close of a dropped client."""
        if conn.reason != p.Reason.QUIT and not conn.out:
            self._shutdown(conn)
        # Otherwise the flush that sends its last lines (a timeout notice, the shutdown
        # line) shuts it down; /quit is finished by the reader itself.

    def _shutdown(self, conn: Conn) -> None:
        """Wake the reader thread blocked in recv(): it sees EOF and closes the socket."""
        if not conn.shut and not conn.closed:
            conn.shut = True
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------ flushing
    def _send_pending(self) -> None:
        """Send the pending broadcasts, joined, to every member (lock held)."""
        lines, self._pending = self._pending, []
        self._send_to_members(b"".join(lines))
        self._apply([])  # the sends may have found dead or too-slow clients

    def _flush(self) -> None:
        """Hand every queued byte to the kernel, one send() per client (lock held)."""
        if self._pending:
            self._send_pending()
        while self._dirty:
            work = self._take_dirty()
            self._settle([(conn, data, _send(conn.sock, data)) for conn, data in work])
        self._flushed.notify_all()

    def _take_dirty(self) -> list[tuple[Conn, list[bytes]]]:
        work = []
        for conn in self._dirty:
            conn.dirty = False
            if conn.discard or conn.closed:
                continue
            parts = conn.out
            conn.out = []
            if conn.unsent:
                parts.insert(0, conn.unsent)
                conn.unsent = b""
            if parts:
                work.append((conn, parts))
        self._dirty = []
        return work

    def _settle(self, results: list[tuple[Conn, list[bytes], int]]) -> None:
        for conn, parts, sent in results:
            self._settle_one(conn, parts, sent)
        self._apply([])

    def _settle_one(self, conn: Conn, parts: list[bytes], sent: int) -> None:
        """Account for one send() of `parts` to `conn` that took `sent` bytes (or -errno)."""
        if sent < 0:  # the peer is gone: -errno
            if not conn.gone:
                reset = -sent == errno.ECONNRESET
                self._to_drop.append((conn, p.Reason.RESET if reset else p.Reason.CLOSED))
            return
        size = sum(map(len, parts))
        if self.config.trace:
            self._trace(f"send() {sent} of {size} bytes to {self._name(conn)}")
        conn.queued -= sent
        if sent < size and not conn.discard:
            conn.unsent = b"".join(parts)[sent:]
            self._backlogged.add(conn)
            self._wake()  # the housekeeper waits until the socket is writable
            if conn.queued > self.config.max_queue:
                self._to_drop.append((conn, p.Reason.TOO_SLOW))
        else:
            self._backlogged.discard(conn)
        if conn.gone and conn.reason != p.Reason.QUIT:
            self._shutdown(conn)  # a dropped client gets one last try, never a wait

    # ------------------------------------------------------------------ housekeeping
    def _wake(self) -> None:
        """Wake the housekeeper. Call with the lock held: it resets the flag and drains
        the pipe under the lock, so no wake-up can fall between the two and be lost."""
        if self._woken:
            return
        self._woken = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _housekeeper(self) -> None:
        """Flush clients whose full buffers drained; end overdue handshakes."""
        waiter = Waiter()
        while not self._stopping.is_set():
            with self._lock.raw:
                watch = [c for c in self._backlogged if not c.discard]
                timeout = None
                now = time.monotonic()
                if self._handshaking:
                    first = min(c.deadline for c in self._handshaking)
                    timeout = max(0.0, first - now) + 0.01
                elif self._last_deadline > now:
                    # Handshakes mostly end before this thread looks. Waking at the last
                    # one's deadline anyway means the next greeting, whose deadline is
                    # later, needs no wake-up: one per handshake timeout, not per client.
                    timeout = self._last_deadline - now + 0.01
                if self._held:
                    due = max(0.0, self._held_since + _NOTICE_DELAY - now)
                    timeout = due if timeout is None else min(timeout, due)
                # Later handshakes have later deadlines: they need no wake-up until then.
                self._housekeeper_due = math.inf if timeout is None else now + timeout
            writable = waiter.wait(self._wake_r, [c.sock for c in watch], timeout)
            with self._lock:  # leaving it flushes
                self._woken = False
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                for conn in watch:
                    if conn.sock in writable and not conn.dirty and not conn.discard:
                        conn.dirty = True
                        self._dirty.append(conn)
                now = time.monotonic()
                if self._held and now >= self._held_since + _NOTICE_DELAY:
                    if not self._dirty:
                        self._dirty_since = self._held_since  # overdue: flushed on leaving
                    for conn in self._held:
                        conn.held = False
                        if not conn.dirty and not conn.unsent and not conn.discard:
                            conn.dirty = True
                            self._dirty.append(conn)
                    self._held = []
                self._end_overdue_handshakes(now)
                self._apply([])

    def _end_overdue_handshakes(self, now: float) -> None:
        """Drop the clients that chose no nickname in time (lock held)."""
        for conn in [c for c in self._handshaking if c.deadline <= now]:
            self._deliver(conn, p.encode_line(p.error_line("nickname timeout")))
            self._drop(conn, p.Reason.TIMEOUT)

    def _say_goodbye(self) -> None:
        """Tell every client the server is stopping and drop them all (lock held)."""
        bye = p.encode_line("*** server shutdown")
        for conn in list(self._conns):
            self._deliver(conn, bye)
            self._drop(conn, p.Reason.SHUTDOWN, announce=False)

    # ------------------------------------------------------------------ limits
    def _capacity(self) -> int:
        limit = raise_fd_limit()
        by_fds = max(1, limit - _FD_MARGIN) if limit else 10000
        wanted = self.config.max_clients
        if wanted is None:
            return min(10000, by_fds)
        if wanted > by_fds:
            self.log(
                f"warning: --max-clients {wanted} is above what the file-descriptor limit "
                f"allows; using {by_fds}"
            )
            return by_fds
        return max(1, wanted)


HAS_SENDMSG = hasattr(socket.socket, "sendmsg")  # not on Windows
_IOV_MAX = 512  # fewer buffers than any system's limit for one sendmsg()


def _send(sock: socket.socket, parts: list[bytes]) -> int:
    """One non-blocking send of the queued lines: bytes taken, 0 when the buffer is full,
    -errno when the connection is dead. Several lines go out with sendmsg(), which gathers
    them without copying them into one new string first."""
    try:
        if len(parts) == 1:
            return sock.send(parts[0], DONTWAIT)
        if HAS_SENDMSG and len(parts) <= _IOV_MAX:
            return sock.sendmsg(parts, (), DONTWAIT)
        return sock.send(b"".join(parts), DONTWAIT)
    except BlockingIOError:
        return 0
    except OSError as exc:
        return -(exc.errno or errno.EPIPE)
