"""The load generator's I/O: one selectors event loop drives many client sockets.

One thread, non-blocking sockets, one `select()` per turn: the design lesson 6 names as the
next step after thread-per-client. Framing and the handshake reuse netlab.chat.protocol
(ClientReader, NickPrompt). Clients have roles:
- observer: scans every complete line for tokens (deliveries, latency, corruption);
- sender: sends token lines, paced (--rate) or flow-controlled (--max);
- sink: only drains its socket (at 1,000 clients only ~30 observers parse; the rest read
  so the server never sees them as slow readers);
- stalled: joins, then never reads again (--slow-readers);
- churn: joins, then closes at once with RST or FIN.
Sinks can live in worker processes (worker_main) when one process cannot keep up.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import selectors
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netlab.bench import tokens
from netlab.chat.protocol import ClientReader, NickPrompt

OBSERVER, SENDER, SINK, STALLED, CHURN, NEWCOMER = 1, 2, 4, 8, 16, 32
NEWCOMER_SID = 0xFFFFE  # sender id of the newcomer's probe line
WARMUP_SID = 0xFFFFF  # sender id of the warm-up lines
_RECV = 262144
_SINK_INTERVAL = 0.02  # sink-only loops poll 50 times a second: fewer, fuller recv() calls
_LINGER_ZERO = struct.pack("ii", 1, 0)
_CONNECTING, _HANDSHAKE, _READY, _CLOSED = range(4)
# Latency ends when a line reaches the observer's socket, not when this busy loop gets to
# it: Linux stamps each arriving packet (SO_TIMESTAMPNS, 35 on x86 and ARM; Python does not
# name it) and recvmsg() hands the stamp over. The stamp is wall-clock time, so token send
# times are too. Elsewhere the stamp is the time select() returned.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
KERNEL_STAMPS = sys.platform.startswith("linux")
_STAMP_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


class Client:
    __slots__ = (
        "acked",
        "close_rst",
        "closed_ns",
        "error",
        "idx",
        "joined_ns",
        "max_seq",
        "nick",
        "nick_sent",
        "out",
        "reader",
        "role",
        "seen",
        "sent",
        "sock",
        "start_ns",
        "state",
        "tail",
        "tcp_ns",
    )

    def __init__(self, idx: int, nick: str, role: int) -> None:
        self.idx = idx
        self.nick = nick.encode()
        self.role = role
        self.sock: socket.socket | None = None
        self.state = _CONNECTING
        self.start_ns = 0
        self.tcp_ns = 0  # TCP connect done
        self.joined_ns = 0  # handshake done (own nickname seen)
        self.closed_ns = 0  # the server closed it (or it failed)
        self.error: str | None = None
        self.reader: ClientReader | None = None
        self.nick_sent = False
        self.tail: bytes | None = None  # observer: the unfinished last line; None: not one
        self.out = bytearray()
        self.seen: set[int] = set()  # observer: (sender << 32 | seq) already delivered
        self.sent = 0  # sender: token lines sent
        self.acked = 0  # sender: lines every observer has seen (flow control)
        self.max_seq: dict[int, int] = {}  # observer: sender -> highest seq seen
        self.close_rst = True


@dataclass
class SendPlan:
    senders: list[Client]
    messages: int  # per sender
    rate: float | None  # total lines/s over all senders; None: flood with a window
    size: int = 100
    window: int = 50  # flood: lines in flight per sender


@dataclass
class Tally:
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0
    corrupted: int = 0
    foreign: int = 0
    echoes: int = 0
    latencies: array = field(default_factory=lambda: array("q"))
    first_send_ns: int = 0
    last_send_ns: int = 0
    last_delivery_ns: int = 0
    max_gap_ns: int = 0
    warmup_seen: int = 0
    newcomer_seen_ns: int = 0


class Engine:
    def __init__(self, host: str, port: int, protocol: str, run: int) -> None:
        self.host, self.port, self.protocol, self.run = host, port, protocol, run
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sel = selectors.DefaultSelector()
        self.clients: list[Client] = []
        self.pending: list[Client] = []  # waiting to start connecting
        self.in_flight = 0
        self.concurrency = 50
        self.tally = Tally()
        self.plan: SendPlan | None = None
        self.observers: list[Client] = []
        self.stalled: list[Client] = []
        self.sink_bytes = 0
        self.churn_ok = 0
        self.churn_failed = 0
        self.errors: dict[str, int] = {}
        self.handshake_timeout = 10.0
        self.on_ready: Callable[[Client], None] | None = None
        # May the next pending client start connecting, given how many have started?
        # (Spreads observers over the server's join order while workers connect sinks.)
        self.gate: Callable[[int], bool] | None = None
        self._t0 = 0
        self._period_ns = 0
        self._next_due_ns = 0
        self._next_check_ns = 0
        self.senders: dict[int, Client] = {}
        self._stall_poll = select.poll() if hasattr(select, "poll") else None
        self._stall_by_fd: dict[int, Client] = {}
        self._wall_ns = send_clock()  # arrival time when the kernel gives no stamp

    # ------------------------------------------------------------------ connecting
    def add(self, clients: list[Client], concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self.pending.extend(reversed(clients))
        self.clients.extend(clients)
        self.observers.extend(c for c in clients if c.role & OBSERVER)

    def _start_connects(self, now: int) -> None:
        while self.pending and self.in_flight < self.concurrency:
            if self.gate is not None and not self.gate(self.started()):
                return
            c = self.pending.pop()
            c.start_ns = now
            self.in_flight += 1
            sock = socket.socket(self.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            # Small token lines should go out at once: Nagle would hold them for the ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sock = sock
            err = sock.connect_ex((self.host, self.port))
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                self._fail(c, _errname(err), now)
                continue
            self.sel.register(sock, selectors.EVENT_WRITE, c)

    def started(self) -> int:
        """Clients that began connecting."""
        return len(self.clients) - len(self.pending)

    def settled(self) -> int:
        """Clients whose connect and handshake are over, joined or failed."""
        return self.started() - self.in_flight

    def _connected(self, c: Client, now: int) -> None:
        assert c.sock is not None
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(c, _errname(err), now)
            return
        c.tcp_ns = now
        if self.protocol == "raw":
            self._ready(c, now)
        else:
            c.state = _HANDSHAKE
            c.reader = ClientReader()
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def _handshake(self, c: Client, data: bytes, now: int) -> None:
        assert c.reader is not None
        if c.nick_sent and c.nick in data:
            self._ready(c, now)
            return
        for item in c.reader.feed(data):
            if isinstance(item, NickPrompt) and not c.nick_sent:
                c.nick_sent = True
                self._write(c, c.nick + b"\n")
            elif c.nick_sent and isinstance(item, str) and c.nick.decode() in item:
                self._ready(c, now)
                return

    def _ready(self, c: Client, now: int) -> None:
        c.state = _READY
        c.joined_ns = now
        c.reader = None
        self.in_flight -= 1
        assert c.sock is not None
        if c.role & CHURN:
            self.churn_ok += 1
            self._close(c, rst=c.close_rst)
            return
        if c.role & OBSERVER:
            c.tail = b""
            # Room for bursts while the loop serves the other sockets: with the default
            # 128 KiB a loaded generator looks like a slow reader to the server.
            with contextlib.suppress(OSError):
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if KERNEL_STAMPS:
                with contextlib.suppress(OSError):
                    c.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if c.role & STALLED:
            # Never read again: only watch for the server closing it (POLLHUP, POLLERR).
            self.sel.unregister(c.sock)
            self.stalled.append(c)
            if self._stall_poll is not None:
                mask = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR
                self._stall_poll.register(c.sock.fileno(), mask)
                self._stall_by_fd[c.sock.fileno()] = c
        else:  # raw servers come here straight from connect(), still watched for writing
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
            self.sel.modify(c.sock, events, c)
        if self.on_ready is not None:
            self.on_ready(c)

    def _fail(self, c: Client, why: str, now: int) -> None:
        if c.state in (_CONNECTING, _HANDSHAKE):
            self.in_flight -= 1
            c.error = why
            self.errors[why] = self.errors.get(why, 0) + 1
            if c.role & CHURN:
                self.churn_failed += 1
        self._close(c, rst=True)
        c.closed_ns = now

    def _close(self, c: Client, rst: bool) -> None:
        c.state = _CLOSED
        sock = c.sock
        if sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        fd = sock.fileno()
        if fd in self._stall_by_fd and self._stall_poll is not None:
            self._stall_poll.unregister(fd)
            del self._stall_by_fd[fd]
        if rst:  # SO_LINGER 0: close() sends RST, the abrupt end of a crashed client
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        sock.close()
        c.tail = None
        if c.role & CHURN:
            c.sock = None

    def close_all(self) -> None:
        for c in self.clients:
            if c.state != _CLOSED:
                self._close(c, rst=True)
        self.sel.close()

    # ------------------------------------------------------------------ the loop
    def loop(self, until: Callable[[], bool], deadline: float, sink_only: bool = False) -> bool:
        """Run until `until()` is true (returns True) or the monotonic deadline passes."""
        while True:
            now = time.monotonic_ns()
            if self.pending:
                self._start_connects(now)
            if until():
                return True
            if time.monotonic() >= deadline:
                return False
            timeout = 0.05 if self.gate is None or not self.pending else 0.001
            if self.plan is not None:
                self._send_due(now)
                if self.plan.rate is not None and self._next_due_ns > now:
                    timeout = min(timeout, (self._next_due_ns - now) / 1e9)
            if self.in_flight and now >= self._next_check_ns:
                self._next_check_ns = now + 100_000_000  # O(N): ten times a second is enough
                self._check_handshakes(now)
            try:
                events = self.sel.select(timeout)
            except InterruptedError:
                continue
            now = time.monotonic_ns()
            self._wall_ns = send_clock()
            for key, mask in events:
                c: Client = key.data
                if c.state == _CONNECTING:
                    self._connected(c, now)
                    continue
                if mask & selectors.EVENT_WRITE and c.out:
                    self._flush(c, now)
                if mask & selectors.EVENT_READ and c.state != _CLOSED:
                    self._read(c, now)
            if self._stall_by_fd:
                self._check_stalled(now)
            if sink_only and not self.in_flight and not self.pending:
                time.sleep(_SINK_INTERVAL)  # let lines pile up: one recv() takes many

    def _check_handshakes(self, now: int) -> None:
        limit = now - int(self.handshake_timeout * 1e9)
        for c in self.clients:
            if c.state in (_CONNECTING, _HANDSHAKE) and c.start_ns and c.start_ns < limit:
                self._fail(c, "connect timeout" if c.state == _CONNECTING
                           else "handshake timeout", now)

    def _check_stalled(self, now: int) -> None:
        assert self._stall_poll is not None
        for fd, _ in self._stall_poll.poll(0):
            c = self._stall_by_fd.get(fd)
            if c is not None and not c.closed_ns:
                c.closed_ns = now
                self._stall_poll.unregister(fd)
                del self._stall_by_fd[fd]

    def _read(self, c: Client, now: int) -> None:
        assert c.sock is not None
        arrived = self._wall_ns
        try:
            if c.tail is not None and KERNEL_STAMPS:
                data, ancillary, _, _ = c.sock.recvmsg(_RECV, _STAMP_SPACE)
                arrived = _arrival(ancillary) or arrived
            else:
                data = c.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if c.state == _READY:
                self._server_closed(c, now)
            else:
                self._fail(c, _errname(exc.errno or 0), now)
            return
        if not data:
            if c.state != _READY:
                self._fail(c, "closed by server during handshake", now)
            else:
                self._server_closed(c, now)
            return
        if c.state == _HANDSHAKE:
            self._handshake(c, data, now)
        elif c.tail is not None:
            self._observe(c, _complete_lines(c, data), now, arrived)
        else:
            self.sink_bytes += len(data)

    def _server_closed(self, c: Client, now: int) -> None:
        c.closed_ns = now
        self._close(c, rst=False)

    def _observe(self, c: Client, lines: bytes, now: int, arrived: int) -> None:
        """Tally the tokens in complete lines that reached the socket at `arrived`.

        One scan over the whole chunk, not one per line: a token never spans a newline,
        so the count is the same, for a fraction of the generator's time."""
        t = self.tally
        found = tokens.Found()
        tokens.scan(lines, self.run, found)
        if not (found.tokens or found.corrupted or found.foreign):
            return
        t.corrupted += found.corrupted
        t.foreign += found.foreign
        for sid, seq, sent_us in found.tokens:
            if sid == c.idx:
                t.echoes += 1
                continue
            if sid == WARMUP_SID:
                t.warmup_seen += 1
                continue
            if sid == NEWCOMER_SID:
                t.newcomer_seen_ns = t.newcomer_seen_ns or now
                continue
            key = sid << 32 | seq
            if key in c.seen:
                t.duplicated += 1
                continue
            c.seen.add(key)
            t.delivered += 1
            t.latencies.append(arrived - sent_us * 1000)
            if now - t.last_delivery_ns > t.max_gap_ns and t.last_delivery_ns:
                t.max_gap_ns = now - t.last_delivery_ns
            t.last_delivery_ns = now
            if seq >= c.max_seq.get(sid, -1):
                c.max_seq[sid] = seq

    # ------------------------------------------------------------------ writing
    def _write(self, c: Client, data: bytes) -> None:
        assert c.sock is not None
        if not c.out:
            try:
                sent = c.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return  # the reader side notices the close
            if sent == len(data):
                return
            data = data[sent:]
            if c.state != _CONNECTING:
                with contextlib.suppress(KeyError):
                    self.sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        c.out += data

    def _flush(self, c: Client, now: int) -> None:
        assert c.sock is not None
        try:
            sent = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            c.out.clear()
            return
        del c.out[:sent]
        if not c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    # ------------------------------------------------------------------ sending
    def start_plan(self, plan: SendPlan, observers_per_sender: dict[int, int]) -> None:
        """Begin sending; `observers_per_sender` says how many observers should get each
        sender's lines (itself excluded)."""
        self.plan = plan
        self.senders = {s.idx: s for s in plan.senders}
        for s in plan.senders:
            s.sent = s.acked = 0
        for o in self.observers:
            o.max_seq.clear()
        self.tally.expected += sum(plan.messages * observers_per_sender[s.idx]
                                   for s in plan.senders)
        self._t0 = time.monotonic_ns()
        if plan.rate:
            self._period_ns = int(1e9 * len(plan.senders) / plan.rate)
        self._next_due_ns = self._t0
        self.tally.first_send_ns = self._t0

    def _send_due(self, now: int) -> None:
        plan = self.plan
        assert plan is not None
        n = len(plan.senders)
        next_due = 0
        for k, s in enumerate(plan.senders):
            if s.state != _READY:
                continue
            if plan.rate is None:
                # Flood with flow control: at most `window` lines not yet delivered to every
                # observer, and never more while the kernel has not taken the last ones.
                s.acked = min((o.max_seq.get(s.idx, -1) + 1 for o in self.observers
                               if o is not s and o.state == _READY), default=s.sent)
                while (s.sent < plan.messages and s.sent - s.acked < plan.window
                       and not s.out):
                    self._send_token(s, now)
                continue
            offset = self._t0 + (k * self._period_ns) // n
            while s.sent < plan.messages and offset + s.sent * self._period_ns <= now:
                self._send_token(s, now)
            if s.sent < plan.messages:
                due = offset + s.sent * self._period_ns
                next_due = due if not next_due else min(next_due, due)
        self._next_due_ns = next_due or now + 50_000_000

    def _send_token(self, s: Client, now: int) -> None:
        assert self.plan is not None
        line = tokens.encode(self.run, s.idx, s.sent, send_clock() // 1000,
                             self.plan.size)
        s.sent += 1
        self.tally.last_send_ns = now
        self._write(s, line)

    def all_sent(self) -> bool:
        plan = self.plan
        if plan is None:
            return True
        return all(s.sent >= plan.messages or s.state != _READY for s in plan.senders)

    def send_line(self, c: Client, sid: int, seq: int, size: int = 100) -> None:
        """One token line outside the plan (warm-up, the newcomer's probe)."""
        self._write(c, tokens.encode(self.run, sid, seq, send_clock() // 1000, size))


_MAX_TAIL = 1 << 20  # an unfinished line longer than this is dropped, not kept growing


def _complete_lines(c: Client, data: bytes) -> bytes:
    """The complete lines of what arrived so far; keeps the unfinished rest for later."""
    buf = c.tail + data if c.tail else data
    cut = buf.rfind(b"\n") + 1
    rest = len(buf) - cut
    c.tail = buf[cut:] if rest and rest <= _MAX_TAIL else b""
    return buf[:cut] if rest else buf


def send_clock() -> int:
    """Nanoseconds stamped into token lines, on the clock the arrival stamps use."""
    return time.time_ns() if KERNEL_STAMPS else time.monotonic_ns()


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return int(sec * 1_000_000_000 + nsec)
    return 0


def _errname(err: int) -> str:
    return errno.errorcode.get(err, f"errno {err}")


def connect_summary(clients: list[Client]) -> dict[str, Any]:
    """Raw per-client connect figures (nanoseconds), mergeable across processes."""
    return {
        "connect_ns": [c.tcp_ns - c.start_ns for c in clients if c.tcp_ns],
        "handshake_ns": [c.joined_ns - c.start_ns for c in clients if c.joined_ns],
        "first_start_ns": min((c.start_ns for c in clients if c.start_ns), default=0),
        "last_joined_ns": max((c.joined_ns for c in clients), default=0),
        "joined": sum(1 for c in clients if c.joined_ns),
        "failed": sum(1 for c in clients if c.error),
        "errors": _count(c.error for c in clients if c.error),
    }


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def cpu_seconds() -> float:
    return time.process_time()


def worker_main(pipe: Any, spec: dict[str, Any]) -> None:
    """A worker process: connects its sinks, drains them until told to stop, reports."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    engine = Engine(spec["host"], spec["port"], spec["protocol"], spec["run"])
    engine.handshake_timeout = spec["handshake_timeout"]
    clients = [Client(i, f"{spec['prefix']}{i}", SINK) for i in spec["indices"]]
    engine.add(clients, spec["concurrency"])
    deadline = time.monotonic() + spec["time_limit"]
    try:
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        settled, slot = spec.get("settled"), spec.get("slot", 0)

        def connected() -> bool:
            if settled is not None:  # the parent paces its observers by this count
                settled[slot] = engine.settled()
            return not engine.pending and not engine.in_flight

        engine.loop(connected, deadline)
        summary = connect_summary(clients)
        summary["cpu_percent"] = _busy(cpu0, wall0)
        pipe.send(summary)
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        engine.loop(pipe.poll, deadline, sink_only=True)
        pipe.send({"cpu_percent": _busy(cpu0, wall0), "sink_bytes": engine.sink_bytes,
                   "closed_by_server": sum(1 for c in clients if c.closed_ns and not c.error)})
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        engine.close_all()
        with contextlib.suppress(OSError):
            pipe.close()
        os._exit(0)


def _busy(cpu0: float, wall0: float) -> float:
    wall = time.monotonic() - wall0
    return 0.0 if wall <= 0 else round(100.0 * (cpu_seconds() - cpu0) / wall, 1)
