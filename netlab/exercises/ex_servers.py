"""Server exercises outside the chat: binding (lesson 1), the byte stream (lesson 3) and
restarting on a busy port (lesson 7). netlab plays the clients."""

from __future__ import annotations

import errno
import socket
import sys

from netlab.exercises.common import (
    WHY_TRACEBACK,
    has_line,
    listening_address,
    listening_criterion,
    wait_listening,
)
from netlab.exercises.peer import LOOPBACK, connect, free_port
from netlab.exercises.registry import CheckContext, Criterion, failed, judge, register, skipped
from netlab.exercises.runner import StudentProgram

# Documentation addresses (RFC 5737): never a real host, so binding one fails on (almost)
# every machine. bind() sends no packet; the check tries them itself first.
NOT_MINE = ("198.51.100.10", "192.0.2.10", "203.0.113.10")


def missing_address() -> tuple[str, OSError] | None:
    """An address this machine does not have, and the error bind() gives here (live)."""
    for addr in NOT_MINE:
        with socket.socket() as sock:
            try:
                sock.bind((addr, 0))
            except OSError as exc:
                return addr, exc
    return None


def names_reason(text: str, exc: OSError) -> bool:
    """Says why: this system's own number or words, the error's name, or plain words."""
    low = text.lower()
    clues = ["eaddrnotavail", "not available", "cannot assign", "can't assign", "not valid",
             "does not belong", "not on this machine", "not an address of this",
             "this machine does not have", "no such address"]
    if exc.strerror:
        clues.append(exc.strerror.lower())
    if exc.errno is not None:
        clues.append(str(exc.errno))
    winerror = getattr(exc, "winerror", None)
    if winerror:
        clues.append(str(winerror))
    return any(c in low for c in clues)


@register(1, "bind-address", lesson=1, title="bind the address you are given, explain failures",
          kind="server", starter="ex01_bind.py",
          usage="netlab check 1 -- python my_server.py {host} {port}")
def check_bind(ctx: CheckContext) -> list[Criterion]:
    out: list[Criterion] = []
    port = free_port()
    prog = ctx.start(LOOPBACK, port)
    out.append(listening_criterion(prog, LOOPBACK, port, ctx.step))
    said = listening_address(prog.stdout)
    why_line = ("`listening on HOST:PORT` tells you and the tests where the server really "
                "is (lesson 1)")
    out.append(judge("prints `listening on HOST:PORT`", said == (LOOPBACK, port),
                     f"it printed listening on {LOOPBACK}:{port}",
                     f"expected 'listening on {LOOPBACK}:{port}'; got {said or 'no such line'}",
                     why_line))
    prog.kill()
    found = missing_address()
    if found is None:
        out.append(skipped("explains a bind to an address this machine does not have",
                           "this machine owns every documentation address we tried", "lesson 1"))
        return out
    addr, exc = found
    bad = ctx.start(addr, port)
    code = bad.wait(ctx.step)
    name = f"explains a bind to {addr} (not this machine's)"
    why = ("an address this machine does not have gives EADDRNOTAVAIL; saying so, with the "
           "address, points at the fix (lesson 1)")
    if code is None:
        if wait_listening(bad, addr, port, 0):
            detail = "it said it was listening, but this machine has no such address"
        else:
            detail = "it was still running; it should say what failed and exit"
        bad.kill()
        out.append(failed(name, detail, why))
    elif bad.traceback:
        out.append(failed(name, f"a traceback instead of one line ({bad.describe(1)})",
                          WHY_TRACEBACK))
    else:
        text = bad.output
        ok = addr in text and names_reason(text, exc)
        hint = ("name the address and the reason, e.g. "
                f"'cannot bind {addr}:{port}: {exc.strerror}'")
        out.append(judge(name, ok, f"it said: {bad.lines()[-1] if bad.lines() else ''}",
                         f"{hint}; {bad.describe(2)}", why))
    return out


# ---------------------------------------------------------------------------- lesson 3


@register(3, "byte-stream", lesson=3, title="recv_exactly and read_line on a buffer",
          kind="server", starter="ex03_stream.py",
          usage="netlab check 3 -- python my_server.py {host} {port}")
def check_stream(ctx: CheckContext) -> list[Criterion]:
    port = free_port()
    prog = ctx.start(LOOPBACK, port)
    first = listening_criterion(prog, LOOPBACK, port, ctx.step)
    if not first.passed:
        return [first]
    out = [first]
    why_split = "one send() is not one recv(): a line may arrive a byte at a time (lesson 3)"
    why_glued = "several sends may arrive in one recv(): keep the rest in a buffer (lesson 3)"
    why_exact = "recv(n) returns up to n bytes; recv_exactly loops until it has all n (lesson 3)"
    c1 = connect(LOOPBACK, port, ctx.step)
    if c1 is None:
        return [*out, failed("accepts a connection", f"connect failed; {prog.describe()}",
                             why_split)]
    text = "hello, one byte at a time"
    c1.send_tiny(text.encode() + b"\n", size=1, gap=0.005)
    got, seen = c1.expect(lambda t: t.startswith("echo:"), ctx.step)
    out.append(judge("a line sent one byte at a time", got == f"echo: {text}",
                     f"answered {got!r}", f"expected 'echo: {text}', got {seen[:3] or 'nothing'}",
                     why_split))
    lines = [f"line {i}" for i in range(20)]
    c1.send(b"".join(line.encode() + b"\n" for line in lines))
    answers = []
    for _ in lines:
        line = c1.next_line(ctx.step)
        if line is None:
            break
        answers.append(line.text)
    wanted = [f"echo: {line}" for line in lines]
    out.append(judge("20 lines in one packet", answers == wanted,
                     "answered each of the 20 lines, in order",
                     f"expected 20 echoes in order; got {len(answers)}: {answers[:3]}",
                     why_glued))
    c1.send_split(b"BYTES 10\n0123456789after\n", [13, 16])  # header+4, 3, 3+next line
    block = c1.next_line(ctx.step)
    after = c1.next_line(ctx.step)
    ok = block is not None and block.text == "block: 0123456789" and after is not None \
        and after.text == "echo: after"
    shown = [x.text for x in (block, after) if x is not None]
    out.append(judge("BYTES 10 then the 10 bytes in three pieces", ok,
                     "recv_exactly returned the 10 bytes and the next line stayed intact",
                     f"expected 'block: 0123456789' then 'echo: after'; got {shown}", why_exact))
    c1.close()
    c2 = connect(LOOPBACK, port, ctx.step)
    why_eof = ("b'' is the end: recv_exactly raises EOFError and the server closes that "
               "connection and goes on (lesson 3)")
    if c2 is None:
        out.append(failed("a connection that ends inside a block",
                          f"could not connect again; {prog.describe()}", why_eof))
        return out
    c2.send(b"BYTES 10\n0123")
    c2.shutdown_write()
    closed = c2.wait_eof(ctx.step)
    c2.close()
    c3 = connect(LOOPBACK, port, ctx.step)
    still = False
    if c3 is not None:
        c3.send(b"still there?\n")
        got, _ = c3.expect(lambda t: t == "echo: still there?", ctx.step)
        still = got is not None
        c3.close()
    out.append(judge("a connection that ends inside a block", closed and still,
                     "your server closed it and served the next client",
                     ("it did not close the connection (EOFError not handled?)" if not closed
                      else "the next client got no answer") + f"; {prog.describe(2)}", why_eof))
    return out


# ---------------------------------------------------------------------------- lesson 7


def _clear_refusal(prog: StudentProgram, port: int, limit: float, name: str,
                   why: str) -> Criterion:
    code = prog.wait(limit)
    if code is None:
        listening = "listening on" in prog.stdout.lower()
        prog.kill()
        detail = ("it started a second server on the same port" if listening else
                  "it kept running instead of saying what failed")
        if listening and sys.platform.startswith("win"):
            detail += " (on Windows SO_REUSEADDR allows that: use SO_EXCLUSIVEADDRUSE)"
        return failed(name, detail, why)
    if prog.traceback:
        return failed(name, f"a traceback instead of one line ({prog.describe(1)})",
                      WHY_TRACEBACK)
    ok = has_line(prog.output, str(port)) and has_line(prog.output, "netlab diagnose --port")
    return judge(name, ok, f"it said: {' | '.join(prog.lines()[-2:])}",
                 f"one line should name port {port} and suggest `netlab diagnose --port "
                 f"{port}`; {prog.describe(2)}", why)


def _low_port() -> tuple[int, str] | None:
    """A port below 1024 this user may not bind (live), or None with nothing to test."""
    for port in range(1023, 1000, -1):
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except PermissionError:
                return port, "EACCES"
            except OSError as exc:
                if exc.errno == errno.EACCES:
                    return port, "EACCES"
                continue  # in use: try the next one
            return None  # this user may bind low ports (root, or a lowered threshold)
    return None


@register(7, "address-in-use", lesson=7, title="restart at once; explain a busy or low port",
          kind="server", starter="chat_server.py",
          usage="netlab check 7 -- python chat_server.py {host} {port}")
def check_reuse(ctx: CheckContext) -> list[Criterion]:
    port = free_port()
    first = ctx.start(LOOPBACK, port)
    up = listening_criterion(prog=first, host=LOOPBACK, port=port, timeout=ctx.step)
    if not up.passed:
        return [up]
    out = [up]
    second = ctx.start(LOOPBACK, port)
    out.append(_clear_refusal(second, port, ctx.step, "a second server on the same port: one "
                              "clear line", "EADDRINUSE: another socket holds the port; say which "
                              "port and how to find the owner (lesson 7)"))
    # A client session, then the server dies first: its side of the connection is left in
    # FIN_WAIT/TIME_WAIT on the server's port, exactly what a quick restart runs into.
    client = connect(LOOPBACK, port, ctx.step)
    if client is not None:
        # Its first line (NICK) proves the server accepted it. A connection still in the
        # backlog when the server dies is reset, leaves no TIME_WAIT behind, and a server
        # without SO_REUSEADDR would then restart by luck.
        client.pump(ctx.step)
    first.kill()
    if client is not None:
        client.wait_eof(ctx.step)
        client.close()
    again = ctx.start(LOOPBACK, port)
    why_restart = ("after a client session the old connection waits in TIME_WAIT on the "
                   "server's port; SO_REUSEADDR before bind() lets the restart bind anyway "
                   "(SO_EXCLUSIVEADDRUSE on Windows) (lesson 7)")
    ok = wait_listening(again, LOOPBACK, port, ctx.step)
    out.append(judge("restarts on the same port right after a client session", ok,
                     "the restarted server is listening", "the restart failed: "
                     f"{again.describe(2)}; set SO_REUSEADDR before bind()", why_restart))
    again.kill()
    low = _low_port()
    name = "a port below 1024: one clear line"
    if low is None:
        out.append(skipped(name, "this user may bind ports below 1024 here (root, Windows, or "
                           "a lowered ip_unprivileged_port_start): nothing to refuse",
                           "lesson 7"))
    else:
        prog = ctx.start(LOOPBACK, low[0])
        out.append(_clear_refusal(prog, low[0], ctx.step, name,
                                  "EACCES: low ports need rights on Linux and macOS; say which "
                                  "port and suggest a free one or `netlab diagnose --port`"))
    return out



