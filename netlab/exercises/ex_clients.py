"""Client exercises: netlab is the server (lessons 0, 2 and 10)."""

from __future__ import annotations

import errno
import socket

from netlab.chat import protocol as p
from netlab.exercises.common import WHY_TRACEBACK, has_line
from netlab.exercises.peer import LOOPBACK, Listener, free_port
from netlab.exercises.registry import (
    CheckContext,
    Criterion,
    failed,
    judge,
    passed,
    register,
    skipped,
)
from netlab.exercises.runner import StudentProgram

NICK = "tester"
UNKNOWN_HOST = "no-such-host!.invalid"  # glibc refuses it without asking DNS; .invalid never exists


def _contains_line(text: str, wanted: str) -> bool:
    return any(wanted in line for line in text.splitlines())


@register(0, "client", lesson=0, title="a chat client that speaks the protocol", kind="client",
          starter="ex00_client.py",
          usage="netlab check 0 -- python my_client.py {host} {port}")
def check_client(ctx: CheckContext) -> list[Criterion]:
    """Our server sends NICK in tiny pieces, lines glued together and a line cut inside a
    UTF-8 character; the student's stdin gets a nickname and one message."""
    listener = Listener()
    try:
        return _client_session(ctx, listener)
    finally:
        listener.close()


def _client_session(ctx: CheckContext, listener: Listener) -> list[Criterion]:
    why_connect = "a client exercise connects to netlab's scripted server at {host}:{port}"
    prog = ctx.start(listener.host, listener.port, stdin=True)
    prog.send_input(f"{NICK}\n")  # what a person types when NICK appears
    conn = listener.accept(ctx.step)
    if conn is None:
        return [failed("connects", f"nothing connected to {listener.host}:{listener.port} "
                       f"within {ctx.step:g} s; your program {prog.describe()}", why_connect)]
    out = [passed("connects", f"your client connected to {listener.host}:{listener.port}",
                  why_connect)]
    conn.send_tiny(b"NICK\r\n", size=2)  # "NI", "CK", "\r\n": one message, three recv()s
    line = conn.next_line(ctx.step)
    why_nick = ("the server reads your nickname as a line: without `\\n` it waits forever "
                "(lesson 0)")
    if line is None:
        pending = conn.framer.pending
        detail = (f"your client sent {pending!r} without a newline" if pending else
                  "your client sent nothing after NICK (it came in three pieces: NI, CK, "
                  "\\r\\n; did you compare one recv() with 'NICK'?)")
        out.append(failed("answers NICK with a nickname line", detail, why_nick))
    else:
        nick, reason = p.check_nick(line.text)
        out.append(judge("answers NICK with a nickname line", nick is not None,
                         f"your client answered {line.text!r}",
                         f"your client answered {line.text!r}: {reason}", why_nick))
    conn.send(p.encode_line(p.welcome_line(NICK, 1)) + p.encode_line(p.joined_line(NICK)))
    prog.send_input("hello from the check\n")
    typed = conn.next_line(ctx.step)
    why_typed = "every client line ends in \\n; the server frames on it (lessons 0 and 4)"
    if typed is None:
        pending = conn.framer.pending
        ended = "" if prog.running else f"; it had ended: your program {prog.describe()}"
        out.append(failed("sends each typed line with \\n",
                          f"we typed 'hello from the check'; your client sent {pending!r}"
                          + (" (no newline)" if pending else "") + ended, why_typed))
    else:
        out.append(judge("sends each typed line with \\n", typed.text == "hello from the check",
                         "we typed 'hello from the check' and got it as one line",
                         f"we typed 'hello from the check' and got {typed.text!r}", why_typed))
    echo = p.message_line(NICK, "hello from the check")
    conn.send_tiny(p.encode_line(echo), size=3)
    utf8 = "zoë: café ☕ naïve"
    data = p.encode_line(utf8)
    cuts = [data.index("ë".encode()) + 1, data.index("☕".encode()) + 2]  # inside ë and ☕
    conn.send_split(data, cuts)
    glued = ["*** ana joined", "ana: one", "ana: two"]
    conn.send(b"".join(p.encode_line(x) for x in glued))
    expected = [p.welcome_line(NICK, 1), p.joined_line(NICK), echo, utf8, *glued]
    prog.wait_output(lambda t: all(_contains_line(t, e) for e in expected), ctx.step)
    conn.close()  # the server goes away: a good client notices and ends
    prog.wait(1.0)
    prog.kill()
    text = prog.stdout
    why_lines = "TCP delivers bytes, not messages: print lines, not recv() chunks (lessons 3-4)"
    merged = [p.welcome_line(NICK, 1), p.joined_line(NICK), *glued]
    missing = [e for e in merged if not _contains_line(text, e)]
    out.append(judge("prints lines that arrive together, one per line", not missing,
                     "welcome, join and three lines sent in one packet were each printed",
                     f"not printed as whole lines: {missing[:2]}", why_lines))
    out.append(judge("prints a line that arrives in tiny pieces as one line",
                     _contains_line(text, echo), f"{echo!r} came 3 bytes at a time and was "
                     "printed whole", f"{echo!r} came 3 bytes at a time; your output has no "
                     "line with it (printed per recv()?)", why_lines))
    out.append(judge("decodes a character split between two packets",
                     _contains_line(text, utf8), f"{utf8!r} was printed correctly",
                     f"{utf8!r} was cut inside ë and ☕; your output has no such line "
                     "(decode whole lines, not chunks)" + (": a traceback" if prog.traceback
                                                          else ""),
                     "UTF-8 characters are 1-4 bytes; a recv() may end inside one (lesson 4)"))
    return out


# ---------------------------------------------------------------------------- lesson 2


def _blackhole() -> tuple[Listener | None, list[socket.socket]]:
    """A loopback port that never answers: a listener with a full accept queue. Linux drops
    the SYNs (the client times out); Windows refuses instead, then nothing is provable."""
    listener = Listener(backlog=0)
    fillers: list[socket.socket] = []
    for _ in range(6):
        sock = socket.socket()
        sock.settimeout(0.3)
        try:
            sock.connect((listener.host, listener.port))
            fillers.append(sock)
        except TimeoutError:
            sock.close()
            return listener, fillers  # a SYN got no answer: the port is a black hole now
        except OSError:
            sock.close()
            break
    for sock in fillers:
        sock.close()
    listener.close()
    return None, []


def _verdict(prog: StudentProgram, limit: float, phrase: str, target: str, name: str,
             why: str) -> Criterion:
    code = prog.wait(limit)
    if code is None:
        detail = (f"your client was still running after {limit:g} s; give connect() a "
                  "timeout (NETLAB_CONNECT_TIMEOUT) and exit after the message")
        prog.kill()
        return failed(name, detail, why)
    text = prog.output
    if prog.traceback:
        return failed(name, f"a traceback instead of one line ({prog.describe(1)})",
                      WHY_TRACEBACK)
    ok = has_line(text, phrase, target)
    return judge(name, ok, f"your client said: {prog.lines()[-1] if prog.lines() else ''}",
                 f"no line saying '{phrase} ... {target}'; {prog.describe(2)}", why)


@register(2, "errors", lesson=2, title="one clear line per connection failure", kind="client",
          starter="ex02_errors.py",
          usage="netlab check 2 -- python my_client.py {host} {port}")
def check_errors(ctx: CheckContext) -> list[Criterion]:
    connect_timeout = min(3.0, ctx.step)  # the client's own limit, via NETLAB_CONNECT_TIMEOUT
    env = {"NETLAB_CONNECT_TIMEOUT": f"{connect_timeout:g}"}
    closed_port = free_port()
    hole, fillers = _blackhole()
    try:
        runs = {"refused": ctx.start(LOOPBACK, closed_port, env=env),
                "unknown": ctx.start(UNKNOWN_HOST, 55555, env=env)}
        if hole is not None:
            runs["timeout"] = ctx.start(hole.host, hole.port, env=env)
        limit = connect_timeout + ctx.step
        out = [
            _verdict(runs["refused"], limit, "nothing listens on", f"{LOOPBACK}:{closed_port}",
                     "refused: 'nothing listens on HOST:PORT (refused)'",
                     "refused is an answer (RST): the machine is there, nothing listens on that "
                     "port; it is not a firewall (lesson 2)"),
        ]
        if hole is not None:
            out.append(_verdict(runs["timeout"], limit, "no answer from",
                                f"{hole.host}:{hole.port}",
                                "timeout: 'no answer from HOST:PORT (timeout)'",
                                "silence means a firewall, a wrong address or a machine that is "
                                "off: a different fix from refused (lesson 2)"))
        else:
            out.append(skipped("timeout: 'no answer from HOST:PORT (timeout)'",
                               "this system answers a full listen queue with a refusal, so a "
                               "loopback port that never answers cannot be made here",
                               "lesson 2"))
        out.append(_verdict(runs["unknown"], limit, "unknown host", UNKNOWN_HOST,
                            "name error: 'unknown host HOST'",
                            "a name error means no packet left at all: check the spelling, "
                            "not the server (lessons 2 and 10)"))
        return out
    finally:
        for sock in fillers:
            sock.close()
        if hole is not None:
            hole.close()


# ---------------------------------------------------------------------------- lesson 10


def _localhost_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


def _only_on(addr: str) -> Listener | None:
    """A listener on addr whose port is free on every other loopback address."""
    for _ in range(5):
        listener = Listener(addr)
        other = "::1" if ":" not in addr else LOOPBACK
        family = socket.AF_INET6 if ":" in other else socket.AF_INET
        try:
            with socket.socket(family) as probe:
                probe.bind((other, listener.port))
            return listener
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return listener  # that family does not exist here: nobody can be there
            listener.close()
    return None


def _names_case(ctx: CheckContext, addr: str, order: list[str]) -> Criterion:
    name = f"reaches a server on {addr} only (via localhost)"
    why = ("localhost is a list of addresses, often ::1 first; a client must try each "
           "(lesson 10)")
    if addr not in order:
        return skipped(name, f"localhost is {', '.join(order) or 'nothing'} here, not {addr}",
                       why)
    listener = _only_on(addr)
    if listener is None:
        return skipped(name, "could not find a port free on both loopback addresses", why)
    try:
        prog = ctx.start("localhost", listener.port)
        conn = listener.accept(ctx.step)
        if conn is None:
            prog.kill()
            return failed(name, f"your client did not reach {addr}:{listener.port}; "
                          f"{prog.describe(2)}", why)
        conn.send(b"NICK\r\n")
        said = prog.wait_output(lambda t: has_line(t, "connected", addr), ctx.step)
        conn.close()
        prog.kill()
        first = order.index(addr) > 0
        tried = f" after {order[0]} failed" if first else ""
        return judge(name, said, f"connected{tried} and said so",
                     f"connected{tried}, but no line says 'connected ... {addr}'", why)
    finally:
        listener.close()


@register(10, "names", lesson=10, title="try every address; report name errors", kind="client",
          starter="ex10_names.py",
          usage="netlab check 10 -- python my_client.py {host} {port}")
def check_names(ctx: CheckContext) -> list[Criterion]:
    order = _localhost_addresses()
    out = [_names_case(ctx, "::1", order), _names_case(ctx, LOOPBACK, order)]
    prog = ctx.start(UNKNOWN_HOST, 55555)
    out.append(_verdict(prog, ctx.step, "unknown host", UNKNOWN_HOST,
                        "name error: 'unknown host NAME'",
                        "gaierror means the name gave no address; no packet reached any "
                        "server (lesson 10)"))
    if len(order) < 2:
        out.append(skipped("falls back to the next address",
                           f"localhost has one address here ({', '.join(order)}): "
                           "nothing to fall back from", "lesson 10"))
    return out
