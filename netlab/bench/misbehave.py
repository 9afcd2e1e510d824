"""Clients that misbehave: churn (join and vanish, again and again) and bad input.

After each bad-input case a fresh pair of clients must still be able to chat: that is the
question a student's server has to answer "yes" to. The cases use plain blocking sockets
with timeouts (a handful of connections, every wait bounded).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Callable
from typing import Any

from netlab.bench import loadgen as lg
from netlab.bench import tokens
from netlab.bench.watch import ServerWatch, delta
from netlab.chat.protocol import ClientReader, NickPrompt

PAIR_TIMEOUT = 3.0
IDLE_WINDOW = 3.0  # seconds over which the idle server's CPU is measured after churn
BIG_LINE = 10 * 1024 * 1024


class Stuck(Exception):
    """A step of a case timed out or the server closed on us; the message says which."""

    def __init__(self, message: str, connect_errno: int | None = None) -> None:
        super().__init__(message)
        self.connect_errno = connect_errno  # set when connect() itself failed


def _unreachable(exc: Stuck, opts: Any) -> Exception | None:
    """The server cannot be reached at all: the catalog's explanation (exit 3), not a
    round or a case that failed (exit 1)."""
    if exc.connect_errno is None:
        return None
    from netlab.bench.scenarios import unreachable

    return unreachable({lg._errname(exc.connect_errno): 1}, opts.host, opts.port)


# ---------------------------------------------------------------------- churn
def churn(opts: Any, watch: ServerWatch | None, deadline: Any, progress: Any,
          busy: dict[str, float]) -> dict[str, Any]:
    """--churn C rounds of connect, handshake, abrupt close (--close rst|fin)."""
    before = watch.sample() if watch else None
    rst = opts.close == "rst"
    stamp = f"{int(time.time()) % 100000:x}"
    time_limit = deadline.within(max(30.0, opts.churn / 200))
    cpu0, wall0 = lg.cpu_seconds(), time.monotonic()
    t0 = time.monotonic()
    if opts.churn_concurrency == 1:
        ok, errors = _churn_in_turn(opts, stamp, rst, time_limit, progress)
    else:
        ok, errors = _churn_overlapping(opts, stamp, rst, time_limit, progress)
    seconds = time.monotonic() - t0
    busy["churn"] = lg._busy(cpu0, wall0)
    out: dict[str, Any] = {
        "rounds": opts.churn, "ok": ok,
        "failed": opts.churn - ok, "errors": errors,
        "close": opts.close, "concurrency": opts.churn_concurrency,
        "seconds": round(seconds, 3),
        "rounds_per_s": round(ok / seconds, 1) if seconds > 0 else None,
    }
    if watch and before:
        # Let the server notice the last closes, then compare with the baseline.
        end = deadline.within(5.0)
        after = watch.sample()
        while after and time.monotonic() < end and (
                after["fds"] > before["fds"] or after["threads"] > before["threads"]):
            time.sleep(0.1)
            after = watch.sample()
        out["server_before"], out["server_after"] = before, after
        out["back_to_baseline"] = bool(after and after["fds"] <= before["fds"]
                                       and after["threads"] <= before["threads"])
        # CPU time comes in 10 ms ticks: over one second a single tick already reads as
        # 1 %. Three seconds tell a stray tick (0.3 %) from a thread that keeps running.
        idle0 = watch.sample()
        time.sleep(IDLE_WINDOW)
        idle = delta(idle0, watch.sample())
        out["idle_cpu_percent"] = (round(100 * idle["cpu_s"] / IDLE_WINDOW, 1) if idle
                                   else None)
    out["pair_ok"], out["pair_text"] = pair_chats(opts)
    return out


def _churn_in_turn(opts: Any, stamp: str, rst: bool, time_limit: float,
                   progress: Any) -> tuple[int, dict[str, int]]:
    """One round at a time, a plain socket each, no event loop: little generator time per
    round, so the figure is mostly the server's. Every wait is bounded by a socket timeout,
    which costs 8 of a round's 17 system calls on Linux (a poll() before each wait, ioctl()
    to switch modes, getsockopt() after connect), the same for every server measured."""
    ok, errors = 0, {}
    timeout = min(opts.handshake_timeout, 5.0)
    for i in range(opts.churn):
        if time.monotonic() >= time_limit:
            errors["not finished"] = opts.churn - i
            break
        try:
            s = join(opts, f"c{i:x}x{stamp}", timeout)
        except (Stuck, OSError) as exc:
            if i == 0 and isinstance(exc, Stuck):
                problem = _unreachable(exc, opts)  # 2,000 tries of nothing would say less
                if problem is not None:
                    raise problem from None
            why = str(exc) if isinstance(exc, Stuck) else lg._errname(exc.errno or 0)
            errors[why] = errors.get(why, 0) + 1
        else:
            ok += 1
            if rst:
                _rst(s)
            else:
                s.close()
        if i % 50 == 49:
            progress(f"churn ({opts.close})", i + 1, opts.churn)
    return ok, errors


def _churn_overlapping(opts: Any, stamp: str, rst: bool, time_limit: float,
                       progress: Any) -> tuple[int, dict[str, int]]:
    """--concurrency rounds in flight at once, driven by the load generator's loop."""
    engine = lg.Engine(opts.host, opts.port, opts.protocol, 0)
    engine.handshake_timeout = min(opts.handshake_timeout, 5.0)
    rounds = []
    for i in range(opts.churn):
        c = lg.Client(i, f"c{i:x}x{stamp}", lg.CHURN)
        c.close_rst = rst
        rounds.append(c)
    engine.add(rounds, opts.churn_concurrency)

    def done() -> bool:
        finished = engine.churn_ok + engine.churn_failed
        if finished % 50 == 0:
            progress(f"churn ({opts.close})", finished, opts.churn)
        return finished >= opts.churn

    try:
        engine.loop(done, time_limit)
    finally:
        engine.close_all()
    errors = dict(engine.errors)
    if not engine.churn_ok:
        from netlab.bench.scenarios import unreachable

        problem = unreachable(errors, opts.host, opts.port)
        if problem is not None:
            raise problem
    missing = opts.churn - engine.churn_ok - engine.churn_failed
    if missing:
        errors["not finished"] = missing
    return engine.churn_ok, errors


def churn_verdict(c: dict[str, Any]) -> tuple[bool, str]:
    problems = []
    if c["failed"]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(c["errors"].items())) or "not finished"
        problems.append(f"{c['failed']} of {c['rounds']} connect-and-leave rounds failed "
                        f"({kinds})")
    if c.get("back_to_baseline") is False:
        b, a = c["server_before"], c["server_after"]
        problems.append(f"the server kept resources of departed clients (fds {b['fds']} -> "
                        f"{a['fds']}, threads {b['threads']} -> {a['threads']})")
    if (c.get("idle_cpu_percent") or 0) > 5:
        problems.append(f"the idle server still used {c['idle_cpu_percent']} % CPU "
                        "(a thread spinning on recv() returning b''?)")
    if not c["pair_ok"]:
        problems.append(f"afterwards {c['pair_text']}")
    if problems:
        return False, "; ".join(problems)
    return True, (f"{c['ok']} clients joined and vanished ({c['close']}, "
                  f"{c['concurrency']} at a time, {c['rounds_per_s']} rounds/s); the server "
                  "cleaned up and still chats")


# ---------------------------------------------------------------------- blocking helpers
def _connect(opts: Any, timeout: float = PAIR_TIMEOUT) -> socket.socket:
    try:
        s = socket.create_connection((opts.host, opts.port), timeout=timeout)
    except OSError as exc:
        number = exc.errno or (errno.ETIMEDOUT if isinstance(exc, TimeoutError) else None)
        raise Stuck(f"could not connect ({exc.strerror or exc})", number) from None
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _recv_until(s: socket.socket, check: Callable[[bytes], bool], what: str,
                timeout: float = PAIR_TIMEOUT) -> bytes:
    """Receive until check(data so far) is true; Stuck after `timeout` or on close."""
    end = time.monotonic() + timeout
    data = b""
    while not check(data):
        left = end - time.monotonic()
        if left <= 0:
            raise Stuck(f"no {what} within {timeout:.0f} s")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError as exc:
            raise Stuck(f"the connection was reset while waiting for {what}") from exc
        if not chunk:
            raise Stuck(f"the server closed the connection before {what}")
        data = (data + chunk)[-262144:]  # bounded: only recent bytes matter
    return data


def _prompt(s: socket.socket, opts: Any, timeout: float = PAIR_TIMEOUT) -> None:
    if opts.protocol != "netlab":
        return
    reader = ClientReader()
    _recv_until(s, lambda d: any(isinstance(x, NickPrompt) for x in reader.feed(d[-65536:]))
                if d else False, "NICK prompt", timeout)


def join(opts: Any, nick: str, timeout: float = PAIR_TIMEOUT) -> socket.socket:
    s = _connect(opts, timeout)
    try:
        if opts.protocol == "netlab":
            _prompt(s, opts, timeout)
            s.sendall(nick.encode() + b"\n")
            _recv_until(s, lambda d: nick.encode() in d, "welcome after the nickname", timeout)
    except (Stuck, OSError):
        s.close()
        raise
    return s


def pair_chats(opts: Any) -> tuple[bool, str]:
    """A fresh pair joins; one says a line; the other must see it."""
    stamp = f"{int(time.monotonic() * 1000) % 10**8:x}"
    a = b = None
    try:
        a = join(opts, f"pa{stamp}")
        b = join(opts, f"pb{stamp}")
        time.sleep(0.05)  # raw servers: let the server accept b before a speaks
        line = tokens.encode(0xABC, 1, 0, time.monotonic_ns() // 1000, 60)
        a.sendall(line)
        mark = line.strip()
        _recv_until(b, lambda d: mark in d, "line from the other client")
        return True, "a fresh pair of clients chats"
    except Stuck as exc:
        return False, f"a fresh pair of clients could not chat: {exc}"
    except OSError as exc:
        return False, f"a fresh pair of clients could not chat: {exc}"
    finally:
        for s in (a, b):
            if s is not None:
                s.close()


def _rst(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, lg._LINGER_ZERO)
    s.close()


# ---------------------------------------------------------------------- bad input cases
def _long_line(opts: Any) -> str:
    s = join(opts, f"big{int(time.time()) % 10**6}")
    chunk = b"A" * 65536
    sent = 0
    end = time.monotonic() + 10.0
    s.settimeout(2.0)
    try:
        while sent < BIG_LINE and time.monotonic() < end:
            sent += s.send(chunk)
    except OSError:
        pass  # the server closed it or stopped reading: both fine, if chat goes on
    finally:
        _rst(s)
    return f"sent {sent / 2**20:.1f} MiB without a newline"


def _line(payload: bytes) -> Callable[[Any], str]:
    def case(opts: Any) -> str:
        s = join(opts, f"bad{int(time.monotonic() * 1000) % 10**7}")
        try:
            s.sendall(payload)
            time.sleep(0.05)
        finally:
            s.close()
        return f"sent {payload[:24]!r}"
    return case


def _nick(nick: bytes) -> Callable[[Any], str]:
    def case(opts: Any) -> str:
        s = _connect(opts)
        try:
            _prompt(s, opts)
            s.sendall(nick + b"\n")
            time.sleep(0.1)
        finally:
            s.close()
        return f"sent nickname {nick[:20]!r}"
    return case


def _duplicate(opts: Any) -> str:
    nick = f"dup{int(time.monotonic() * 1000) % 10**7}"
    first = join(opts, nick)
    try:
        return _nick(nick.encode())(opts)
    finally:
        first.close()


def _partial_rst(opts: Any) -> str:
    s = join(opts, f"half{int(time.monotonic() * 1000) % 10**7}")
    s.sendall(b"half a li")
    time.sleep(0.05)
    _rst(s)
    return "sent half a line, then RST"


def _reset_before_accept(opts: Any) -> str:
    for _ in range(20):
        _rst(_connect(opts))
    time.sleep(0.2)
    return "20 connections reset right after connecting"


CASES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "long-line": ("a 10 MB line without newline", _long_line),
    "invalid-utf8": ("invalid UTF-8", _line(b"caf\xc3 \xff\xfe\xc3\x28 bad bytes\n")),
    "ansi": ("ANSI escapes", _line(b"\x1b[2J\x1b[31mred screen\x1b[0m\x07\n")),
    "nick-empty": ("an empty nickname", _nick(b"")),
    "nick-long": ("a 1000-character nickname", _nick(b"n" * 1000)),
    "nick-duplicate": ("a duplicate nickname", _duplicate),
    "nick-non-ascii": ("a non-ASCII nickname", _nick("José".encode())),
    "no-nick": ("a client that never sends a nickname", lambda opts: "held open"),
    "partial-rst": ("a partial line, then RST", _partial_rst),
    "reset-before-accept": ("connections reset before accept", _reset_before_accept),
}


def bad_input(opts: Any, watch: ServerWatch | None, deadline: Any,
              progress: Any) -> list[dict[str, Any]]:
    names = list(opts.cases) or list(CASES)
    try:  # nobody there at all: the catalog's explanation (exit 3), not ten failed cases
        _connect(opts).close()
    except Stuck as exc:
        problem = _unreachable(exc, opts)
        if problem is not None:
            raise problem from None
    out: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        if time.monotonic() > deadline.end:
            break
        progress("bad input", k, len(names))
        title, action = CASES[name]
        before = watch.sample() if watch else None
        silent = None  # no-nick: a client that stays silent, open during the pair
        try:
            try:
                if name == "no-nick":
                    silent = _connect(opts)
                detail = action(opts)
            except Stuck as exc:  # (a server that died during a case: it fails the case)
                detail = f"the case itself could not run: {exc}"
            except OSError as exc:
                detail = f"the case itself failed: {exc}"
            after = watch.sample() if watch else None
            ok, text = pair_chats(opts)
        finally:
            if silent is not None:
                silent.close()
        entry: dict[str, Any] = {"case": name, "title": title, "detail": detail, "ok": ok}
        cost = delta(before, after)
        if cost:
            entry["server_cpu_s"] = cost["cpu_s"]
            entry["server_rss_growth_kib"] = cost["rss_kib"]
        if watch and not watch.alive():
            ok = entry["ok"] = False
            text = "the server process died"
        entry["text"] = (f"after {title}, {text}" if ok else
                         f"after {title}, {text[0].lower()}{text[1:]}")
        out.append(entry)
    progress("bad input", len(names), len(names))
    return out

