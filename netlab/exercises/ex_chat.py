"""Chat-server exercises: framing (lesson 4), endings (lesson 5), many clients (lesson 6).

netlab plays the chat's clients (lesson 0's protocol): joins, sends lines cut and glued on
purpose, resets, stalls, and watches what the other clients receive.
"""

from __future__ import annotations

import re
import selectors
import time

from netlab.exercises.common import listening_criterion
from netlab.exercises.peer import LOOPBACK, ChatPeer, chat_connect, free_port
from netlab.exercises.registry import CheckContext, Criterion, failed, judge, register
from netlab.exercises.runner import StudentProgram

WHY_JOIN = ("the checks speak lesson 0's protocol: NICK, the nickname, then `*** NICK joined` "
            "to everyone, the newcomer included")


class ChatSession:
    """The student's server, started on a free port, and the clients we joined to it."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.port = free_port()
        self.prog: StudentProgram = ctx.start(LOOPBACK, self.port)
        self.peers: list[ChatPeer] = []

    def up(self) -> Criterion:
        return listening_criterion(self.prog, LOOPBACK, self.port, self.ctx.step)

    def join(self, nick: str, **kw: int) -> tuple[ChatPeer | None, str]:
        peer = chat_connect(LOOPBACK, self.port, self.ctx.step, **kw)
        if peer is None:
            return None, f"could not connect; your server {self.prog.describe(2)}"
        self.peers.append(peer)
        ok, what = peer.join(nick, self.ctx.step)
        return (peer if ok else None), what

    def close(self) -> None:
        for peer in self.peers:
            peer.close()


def _start(ctx: CheckContext, nicks: list[str]) -> tuple[ChatSession, list[ChatPeer],
                                                         list[Criterion]]:
    session = ChatSession(ctx)
    up = session.up()
    if not up.passed:
        return session, [], [up]
    peers = []
    for nick in nicks:
        peer, what = session.join(nick)
        if peer is None:
            return session, [], [up, failed(f"{nick} joins", what, WHY_JOIN)]
        peers.append(peer)
    return session, peers, [up]


def _from(nick: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(nick)}: ")


# ---------------------------------------------------------------------------- lesson 4


@register(4, "framing", lesson=4, title="a line buffer: split, glued, UTF-8, a limit",
          kind="server", starter="chat_server.py",
          usage="netlab check 4 -- python chat_server.py {host} {port}")
def check_framing(ctx: CheckContext) -> list[Criterion]:
    session, peers, out = _start(ctx, ["ana", "ben"])
    try:
        if not peers:
            return out
        ana, ben = peers
        from_ana = _from("ana")
        text = "café ☕ ok"
        data = text.encode() + b"\n"
        ana.send_split(data, [data.index("é".encode()) + 1, data.index("☕".encode()) + 1])
        got, seen = ben.expect(lambda t: bool(from_ana.match(t)), ctx.step)
        out.append(judge("a line split inside UTF-8 characters", got == f"ana: {text}",
                         f"ben saw {got!r}", f"ben saw {got or seen[-2:] or 'nothing'!r}; "
                         "decode whole lines, not recv() chunks",
                         "a recv() may end inside a character; decoding it then garbles or "
                         "crashes (lesson 4)"))
        ana.send(b"one\ntwo\r\nthree\n")
        lines = []
        for _ in range(3):
            got, _ = ben.expect(lambda t: bool(from_ana.match(t)), ctx.step)
            if got is None:
                break
            lines.append(got)
        wanted = ["ana: one", "ana: two", "ana: three"]
        out.append(judge("three lines glued in one packet (one ends in \\r\\n)", lines == wanted,
                         "ben saw the three lines, the \\r removed",
                         f"ben saw {lines}; expected {wanted}",
                         "one recv() may hold several lines: frame on \\n, strip \\r (lesson 4)"))
        ana.send(b"bad \xff byte\n")
        got, _ = ben.expect(lambda t: bool(from_ana.match(t)), ctx.step)
        ok = got is not None and got.startswith("ana: bad ") and got.endswith(" byte")
        out.append(judge("an invalid UTF-8 byte", ok, f"ben saw {got!r}",
                         f"ben saw {got!r}; decode with errors='replace' and keep serving; "
                         f"{session.prog.describe(1)}",
                         "one bad byte must not crash a thread or cut a connection (lesson 4)"))
        out.extend(_long_line(ctx, ana, ben, session))
        return out
    finally:
        session.close()


def _long_line(ctx: CheckContext, ana: ChatPeer, ben: ChatPeer,
               session: ChatSession) -> list[Criterion]:
    ana.sock.settimeout(ctx.step)
    try:
        ana.sock.sendall(b"x" * 1_000_000)
        ana.sock.sendall(b"\nafter the long line\n")
    except OSError:
        pass  # the server stopped reading or closed: the others' view decides
    # Ana's own next line comes after the long one in her thread: once ben has it (or ana
    # was cut off), anything relayed from the long line has reached ben already.
    ben.expect(lambda t: t == "ana: after the long line", ctx.step)
    ben.say("ben is still here")
    got, _ = ben.expect(lambda t: t == "ben: ben is still here", ctx.step * 2)
    longest = max((len(line.raw) for line in ben.history if not line.too_long), default=0)
    too_long = any(line.too_long for line in ben.history) or longest > 4096 + 64
    why = ("a peer that never sends \\n must not cost unbounded memory, nor reach the others "
           "(lesson 4: limit lines to 4096 bytes)")
    return [
        judge("a 1 MB line is not passed on", not too_long,
              "ben never saw a line over the limit",
              f"ben received a line of {'over 64 KiB' if longest <= 4160 else longest} bytes",
              why),
        judge("the server keeps serving after the 1 MB line", got is not None,
              "ben's next line came back", f"ben's line did not come back; "
              f"{session.prog.describe(2)}", why),
    ]


# ---------------------------------------------------------------------------- lesson 5


def _departures(peer: ChatPeer, nick: str) -> int:
    return sum(1 for line in peer.history
               if not line.too_long and line.text.startswith(f"*** {nick} left"))


@register(5, "ending", lesson=5, title="every departure announced once; Ctrl-C stops cleanly",
          kind="server", starter="chat_server.py",
          usage="netlab check 5 -- python chat_server.py {host} {port}")
def check_ending(ctx: CheckContext) -> list[Criterion]:
    session, peers, out = _start(ctx, ["watch", "quitter", "closer", "crasher"])
    try:
        if not peers:
            return out
        watch, quitter, closer, crasher = peers
        why = {"quitter": "/quit is the polite way out (lesson 0)",
               "closer": "recv() returning b'' is the end of the connection, not 'no data "
                         "yet' (lesson 5)",
               "crasher": "a killed client's system sends RST: ConnectionResetError means "
                          "'this client left', not a crash of the server (lesson 5)"}
        quitter.say("/quit")
        out.append(_announced(ctx, watch, "quitter", "sends /quit", why["quitter"]))
        closer.shutdown_write()
        seen = _announced(ctx, watch, "closer", "closes (FIN, recv() gets b'')", why["closer"])
        closed = closer.wait_eof(ctx.step)
        if seen.passed and not closed:
            seen = failed(seen.name, "announced, but your server never closed its socket "
                          "(the client still waits: CLOSE_WAIT on your side)", why["closer"])
        out.append(seen)
        if seen.passed:
            # The crasher takes in what it was sent first. A reset that meets a send still
            # on its way is reported to the sending thread, and the reading one then sees a
            # plain end of file: a server that mishandles the reset would pass by luck.
            crasher.expect(lambda t: t.startswith("*** closer left"), ctx.step)
        crasher.reset()
        out.append(_announced(ctx, watch, "crasher", "resets (RST)", why["crasher"]))
        vanish = chat_connect(LOOPBACK, session.port, ctx.step)
        if vanish is not None:
            vanish.reset()  # gone before choosing a nickname
        late, what = session.join("late")
        watch.say("still serving?")
        got, _ = watch.expect(lambda t: t == "watch: still serving?", ctx.step)
        late_got = None
        if late is not None:
            late_got = late.expect(lambda t: t == "watch: still serving?", ctx.step)[0]
        counts = {n: _departures(watch, n) for n in ("quitter", "closer", "crasher")}
        ok = got is not None and late_got is not None and all(c == 1 for c in counts.values())
        bad = [f"{n} {c} times" for n, c in counts.items() if c != 1]
        out.append(judge("announces each departure once and keeps serving the others", ok,
                         "each departure was announced once; a client who left before "
                         "choosing a nickname did no harm; a newcomer joined and chatted",
                         "; ".join(bad + ([] if got else ["watch's message did not come back"])
                                   + ([] if late_got else [f"a newcomer could not chat ({what})"]))
                         + f"; {session.prog.describe(1)}",
                         "one client's ending must never take the server or the others down"))
        out.append(_ctrl_c(ctx, session.prog, watch))
        return out
    finally:
        session.close()


def _announced(ctx: CheckContext, watch: ChatPeer, nick: str, how: str, why: str) -> Criterion:
    got, seen = watch.expect(lambda t: t.startswith(f"*** {nick} left"), ctx.step)
    return judge(f"a client that {how} is announced as gone", got is not None,
                 f"watch saw {got!r}", f"watch saw no `*** {nick} left (...)` within "
                 f"{ctx.step:g} s (last: {seen[-2:]})", why)


def _ctrl_c(ctx: CheckContext, prog: StudentProgram, watch: ChatPeer) -> Criterion:
    prog.interrupt()
    code = prog.wait(ctx.step)
    why = ("Ctrl-C is how a server is stopped: tell the clients, close, exit without a "
           "traceback (lesson 5)")
    name = "stops gracefully on Ctrl-C"
    if code is None:
        prog.kill()
        return failed(name, f"still running {ctx.step:g} s after Ctrl-C (a thread that is not "
                      "a daemon, or accept() that ignores it?)", why)
    if prog.traceback:
        return failed(name, "it printed a traceback (catch KeyboardInterrupt)", why)
    ended = watch.wait_eof(ctx.step)
    return judge(name, ended, f"exited with code {code}; clients saw the connection end",
                 "it exited but a client's connection did not end", why)


# ---------------------------------------------------------------------------- lesson 6

_CHAT = re.compile(r"^(s\d+): (s\d+-\d+) ")


@register(6, "many-clients", lesson=6, title="50 clients, one never reads: nobody freezes",
          kind="server", starter="chat_server.py",
          usage="netlab check 6 -- python chat_server.py {host} {port}")
def check_many(ctx: CheckContext) -> list[Criterion]:
    count = int(ctx.options.get("clients", 50))
    volume = int(ctx.options.get("volume", 8 * 1024 * 1024))
    session = ChatSession(ctx)
    try:
        up = session.up()
        if not up.passed:
            return [up]
        out = [up]
        sleepy, what = session.join("sleepy", rcvbuf=4096)
        if sleepy is None:
            return [*out, failed("sleepy joins", what, WHY_JOIN)]
        readers: list[ChatPeer] = []
        for i in range(count - 1):
            peer, what = session.join(f"s{i}")
            if peer is None:
                return [*out, failed(f"client {i + 2} of {count} joins", what, WHY_JOIN)]
            readers.append(peer)
        out.append(judge(f"{count} clients join", True, f"{count} clients joined", "", WHY_JOIN))
        out.extend(_flood(ctx, readers, volume, session.prog))
        return out
    finally:
        session.close()


def _flood(ctx: CheckContext, readers: list[ChatPeer], volume: int,
           prog: StudentProgram) -> list[Criterion]:
    """Three readers take turns sending 4 KB lines while sleepy never reads; every other
    client must get every line, all in the same order."""
    senders = readers[:3]
    size = 4000
    total = max(1, volume // size)
    window = 64  # lines in flight: our own buffers never fill, only sleepy's do
    got: dict[int, list[str]] = {id(r): [] for r in readers}
    sel = selectors.DefaultSelector()
    for r in readers:
        r.sock.setblocking(False)
        sel.register(r.sock, selectors.EVENT_READ, r)
    sent: list[str] = []
    last_progress = time.monotonic()
    stalled = False
    try:
        while True:
            slowest = min(len(v) for v in got.values())
            if len(sent) < total and len(sent) - slowest < window:
                sender = senders[len(sent) % len(senders)]
                tag = f"{sender.nick}-{len(sent)}"
                try:
                    sender.sock.setblocking(True)
                    sender.sock.settimeout(ctx.step)
                    sender.sock.sendall(f"{tag} {'x' * size}\n".encode())
                except OSError:
                    stalled = True
                    break
                finally:
                    sender.sock.setblocking(False)
                sent.append(f"{sender.nick}: {tag}")
                continue
            if slowest >= total:
                break
            events = sel.select(timeout=0.2)
            for key, _ in events:
                peer: ChatPeer = key.data
                peer.pump(0)
                while peer.lines:
                    line = peer.lines.pop(0)
                    match = None if line.too_long else _CHAT.match(line.text)
                    if match:
                        got[id(peer)].append(f"{match.group(1)}: {match.group(2)}")
                last_progress = time.monotonic()
            if time.monotonic() - last_progress > ctx.step or all(r.eof for r in readers):
                stalled = True
                break
    finally:
        sel.close()
    lists = list(got.values())
    complete = all(len(v) == len(sent) and sorted(v) == sorted(sent) for v in lists)
    why_freeze = ("a blocking send() to a client that never reads stops the broadcasting "
                  "thread, and with it everyone (lesson 6)")
    delivered = min(len(v) for v in lists)
    out = [judge(f"the other {len(readers)} get every line while one client never reads",
                 not stalled and complete,
                 f"{len(sent)} lines of 4 KB ({len(sent) * size // 1024} KB each) reached all",
                 f"after {len(sent)} lines sent, the slowest client had {delivered} "
                 f"({'frozen' if stalled else 'lines missing'}); {prog.describe(1)}",
                 why_freeze)]
    # Compare what every client has in common, so a freeze is not reported twice.
    first = lists[0][:delivered]
    diff = next((i for i, v in enumerate(lists) if v[:delivered] != first), None)
    out.append(judge("every client sees the same order", diff is None,
                     f"all clients saw their first {delivered} lines in one order",
                     f"client {diff} saw the lines in another order than client 0",
                     "one lock around the broadcast gives everyone one order (lesson 6)"))
    return out
