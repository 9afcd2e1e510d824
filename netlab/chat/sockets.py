"""Socket plumbing for the server, one portable place for each OS difference.

Nothing here knows about chat: wake-up pairs, waiting on a few sockets without an fd of
its own, per-connection options, the file-descriptor limit.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import sys

IS_WINDOWS = sys.platform.startswith("win")
# MSG_DONTWAIT makes one send non-blocking while the socket stays blocking for its reader
# thread's recv(). Windows has no such flag: there the socket is non-blocking and the reader
# waits in select() before each recv().
DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)

LINGER_ZERO = (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder)
# Linux copies a listening socket's options (TCP_NODELAY, keepalive and its timers) to every
# socket accept() returns: set once on the listener, they cost nothing per connection. Other
# systems get them set on each connection as well.
LISTENER_OPTIONS_INHERITED = sys.platform.startswith("linux")
# Linux's accept() never passes the listener's O_NONBLOCK on (the BSDs and macOS do), and
# Python gives the new socket no timeout unless a default timeout is set.
ACCEPTED_SOCKETS_BLOCK = (sys.platform.startswith("linux")
                          and socket.getdefaulttimeout() is None)


def wake_pair() -> tuple[socket.socket, socket.socket]:
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    return r, w


def devnull() -> str:
    return "nul" if IS_WINDOWS else "/dev/null"


def raise_fd_limit() -> int | None:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now.

    Debian's default soft limit is 1,024 and macOS's 256: far below 10,000 clients.
    """
    try:
        import resource
    except ImportError:  # Windows: no per-process fd limit of this kind
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if sys.platform == "darwin":
        target = min(target, 10240)  # macOS refuses more than OPEN_MAX per process
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def tune(sock: socket.socket, keepalive: bool) -> None:
    """Per-connection options: chat lines go out at once, dead peers are noticed."""
    with contextlib.suppress(OSError):
        # Nagle's algorithm waits for the ACK of earlier data, and the peer delays its ACK
        # up to ~40 ms: small chat lines would wait (RFC 896, RFC 1122 4.2.3.2).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not keepalive:
        return
    # A peer whose machine vanished (cable, sleep, Wi-Fi) never sends FIN or RST. Keepalive
    # probes after 60 s idle, 3 of them 10 s apart, find it; a silent but alive client
    # answers the probes and is never dropped.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if IS_WINDOWS:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.ioctl(socket.SIO_KEEPALIVE_VALS, (1, 60_000, 10_000))  # type: ignore[attr-defined]
        return
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for option, value in (
        (idle, 60),
        (getattr(socket, "TCP_KEEPINTVL", None), 10),
        (getattr(socket, "TCP_KEEPCNT", None), 3),
    ):
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Waiter:
    """Waits on a few sockets without an fd of its own: poll() where it exists (no limit
    on fd numbers, unlike select()), select() on Windows."""

    def __init__(self) -> None:
        self._poll = hasattr(select, "poll")

    def readable(self, socks: list[socket.socket], timeout: float | None = None) -> bool:
        if self._poll:
            poller = select.poll()
            for s in socks:
                poller.register(s.fileno(), select.POLLIN)
            ms = None if timeout is None else math.ceil(timeout * 1000)  # never 0 early: no spin
            try:
                return bool(poller.poll(ms))
            except InterruptedError:
                return False
        ready, _, _ = select.select(socks, [], [], timeout)
        return bool(ready)

    def wait(
        self, wake: socket.socket, writers: list[socket.socket], timeout: float | None
    ) -> set[socket.socket]:
        """Wait for the wake-up socket or for writable sockets; returns the writable ones."""
        if self._poll:
            poller = select.poll()
            poller.register(wake.fileno(), select.POLLIN)
            by_fd: dict[int, socket.socket] = {}
            for s in writers:
                fd = s.fileno()
                if fd >= 0:
                    by_fd[fd] = s
                    poller.register(fd, select.POLLOUT)
            ms = None if timeout is None else math.ceil(timeout * 1000)  # never 0 early: no spin
            try:
                events = poller.poll(ms)
            except InterruptedError:
                return set()
            return {by_fd[fd] for fd, _ in events if fd in by_fd}
        live = [s for s in writers if s.fileno() >= 0]
        try:
            _, ready, _ = select.select([wake], live, [], timeout)
        except (OSError, ValueError):
            return set()
        return set(ready)
