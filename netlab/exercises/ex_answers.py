"""Answer exercises: questions about the student's own capture (lesson 8) and own machine
(lesson 9). The right answers are computed live from that capture and that machine, so a
classmate's answers do not fit; a failed answer says where to look, never the value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netlab.errors import UsageError
from netlab.exercises.answers import as_int, read_answers, word
from netlab.exercises.registry import CheckContext, Criterion, failed, judge, register

WHY_OWN = "your own capture is the only one whose client port and ISN are yours"
WHY_SEQ = ("seq counts bytes from each side's ISN (shown as 0); the SYN counts as one byte, "
           "so data starts at 1; ack is the next byte expected (lesson 8)")


@dataclass(frozen=True)
class Packet:
    """One segment of the student's connection, as the capture and the ladder show it."""

    number: int
    from_client: bool
    flags: str
    seq: int  # relative
    ack: int  # relative
    length: int
    payload: bytes
    raw_seq: int


@dataclass(frozen=True)
class CaptureFacts:
    client_port: int
    client_isn: int | None
    first_data: dict[str, Packet]  # "client"/"server" -> its first data packet
    nick_line_bytes: int | None
    first_fin: str | None  # "client" or "server"
    reset: bool

    @property
    def time_wait(self) -> str:
        if self.reset or self.first_fin is None:
            return "nobody"
        return self.first_fin


def facts_of(packets: list[Packet], client_port: int) -> CaptureFacts:
    """Pure: the answers, from the packets of one connection in capture order."""
    isn = next((p.raw_seq for p in packets if p.from_client and p.flags == "S"), None)
    first: dict[str, Packet] = {}
    for p in packets:
        side = "client" if p.from_client else "server"
        if p.length and side not in first:
            first[side] = p
    sent = b"".join(p.payload for p in packets if p.from_client and p.length)
    nick = sent.index(b"\n") + 1 if b"\n" in sent else None
    fin = next((p for p in packets if "F" in p.flags), None)
    return CaptureFacts(client_port, isn, first, nick,
                        None if fin is None else ("client" if fin.from_client else "server"),
                        any("R" in p.flags for p in packets))


def read_capture(path: Path, client_port: int) -> tuple[list[Packet], list[int]]:
    """The packets of the connection from client_port, and every client port seen."""
    from netlab.capture.analysis import FlowAnalyzer
    from netlab.capture.decode import decode_frame
    from netlab.capture.pcapio import iter_frames

    analyzer = FlowAnalyzer()
    mine: list[Packet] = []
    ports: list[int] = []
    for data, linktype, when in iter_frames(path):
        seg = decode_frame(data, linktype, when)
        if seg is None:
            continue
        ev = analyzer.feed(seg)
        cport = ev.sport if ev.from_client else ev.dport
        if cport not in ports:
            ports.append(cport)
        if cport == client_port:
            mine.append(Packet(ev.number, ev.from_client, ev.flags, ev.seq, ev.ack, ev.length,
                               ev.payload, seg.seq))
    return mine, ports


def _is_sample(path: Path) -> bool:
    from importlib import resources

    try:
        sample = resources.files("netlab.capture") / "data" / "sample-chat.pcap"
        return sample.read_bytes() == path.read_bytes()
    except OSError:
        return False


def grade_capture(answers: dict[str, str], facts: CaptureFacts) -> list[Criterion]:
    """Pure: one criterion per question."""
    out = [judge("the client's initial sequence number (raw, from its SYN)",
                 facts.client_isn is not None and as_int(answers.get("client_isn", "")) ==
                 facts.client_isn, "matches your capture",
                 "does not match the SYN from your client port (raw seq, not relative)"
                 if facts.client_isn is not None else "your capture has no SYN from that "
                 "port: start the capture before the client connects", WHY_OWN)]
    for side in ("server", "client"):
        pkt = facts.first_data.get(side)
        for field in ("seq", "ack"):
            key = f"{side}_first_data_{field}"
            name = f"relative {field} of the {side}'s first data packet"
            if pkt is None:
                out.append(failed(name, f"the {side} sent no data in this connection", WHY_SEQ))
                continue
            want = pkt.seq if field == "seq" else pkt.ack
            got = as_int(answers.get(key, ""))
            out.append(judge(name, got == want, "right",
                             f"you wrote {answers.get(key) or 'nothing'}; look again at packet "
                             f"#{pkt.number} in the relative view", WHY_SEQ))
    got = as_int(answers.get("nick_line_bytes", ""))
    out.append(judge("bytes in your nickname line", facts.nick_line_bytes is not None and
                     got == facts.nick_line_bytes, "right",
                     f"you wrote {answers.get('nick_line_bytes') or 'nothing'}; count every "
                     "byte your client sent up to and including the \\n",
                     "data consumes one sequence number per byte, \\n (and \\r) included"))
    fin = word(answers.get("first_fin", ""))
    out.append(judge("who sent the first FIN", fin == facts.first_fin, "right",
                     f"you wrote {fin or 'nothing'}; find the first packet with F in its "
                     "flags" if facts.first_fin else "your connection has no FIN (a reset?)",
                     "FIN closes one direction; the side that sends it first closes first"))
    tw = word(answers.get("time_wait", ""))
    out.append(judge("who ended in TIME_WAIT", tw == facts.time_wait, "right",
                     f"you wrote {tw or 'nothing'}; TIME_WAIT follows from the first FIN",
                     "whoever closes first waits in TIME_WAIT (lessons 7 and 8)"))
    return out


@register(8, "handshake", lesson=8, title="read your own capture: seq, ack, FIN, TIME_WAIT",
          kind="answers", starter="ex08_answers.txt",
          usage="netlab check 8 --answers answers.txt")
def check_capture(ctx: CheckContext) -> list[Criterion]:
    if ctx.answers is None:
        raise UsageError("exercise 8 needs --answers FILE",
                         "netlab check 8 --starter > answers.txt, then fill it in")
    answers = read_answers(ctx.answers, 8)
    where = answers.get("capture", "")
    if not where:
        raise UsageError("the answers file names no capture (`capture: chat.pcap`)")
    path = Path(where)
    if not path.is_absolute():
        path = ctx.answers.parent / path
    port = as_int(answers.get("client_port", ""))
    if port is None:
        return [failed("your client's port", "the answers file has no client_port",
                       WHY_OWN)]
    if _is_sample(path):
        return [failed("your own capture", "that is netlab's sample capture; capture a "
                       "session of your own client and server", WHY_OWN)]
    packets, ports = read_capture(path, port)
    if not packets:
        shown = ", ".join(str(p) for p in ports[:8]) or "none"
        return [failed("your client's port", f"no connection from client port {port} in "
                       f"{path.name} (client ports there: {shown})", WHY_OWN)]
    return grade_capture(answers, facts_of(packets, port))


# ---------------------------------------------------------------------------- lesson 9

OBSTACLES = ("bind", "firewall", "address", "subnet", "vpn", "wsl", "vm", "isolation", "none")


def grade_lan(answers: dict[str, str], lan: list[str]) -> list[Criterion]:
    """Pure: lan is this machine's classroom-usable addresses, best first (live)."""
    mine = answers.get("lan_address", "").strip()
    why_lan = "classmates connect to your LAN address, not 127.0.0.1 (lessons 1 and 9)"
    if lan:
        ok = mine in lan
        bad = (f"{mine or 'nothing'} is not an address classmates can reach on this machine; "
               "`netlab diagnose --bind` lists them")
    else:
        ok = word(mine) == "none"
        bad = "this machine has no LAN address right now: answer `none`"
    out = [judge("your LAN address", ok, "right: an address of this machine", bad, why_lan)]
    bind = answers.get("classroom_bind", "").strip()
    out.append(judge("the address a classroom server binds", bind in ("0.0.0.0", "::", *lan),
                     "right", f"you wrote {bind or 'nothing'}; which address means 'every "
                     "address of this machine'?",
                     "a server bound to 127.0.0.1 is only reachable from its own machine"))
    for key, want, why in (
        ("bound_to_loopback", ("refused",),
         "refused is an answer: the machine is there, nothing listens on that address"),
        ("firewall_drops", ("timeout",), "a firewall that drops gives silence: a timeout"),
        ("other_subnet", ("timeout", "unreachable"),
         "another subnet or a VPN: no route, or no answer"),
    ):
        got = word(answers.get(key, ""))
        out.append(judge(f"{key.replace('_', ' ')}: what the classmate sees", got in want,
                         "right", f"you wrote {got or 'nothing'}: refused, timeout or "
                         "unreachable? (lesson 9's table)", why))
    obstacle = word(answers.get("obstacle", ""))
    out.append(judge("the obstacle you cleared (or would have)",
                     any(o in obstacle for o in OBSTACLES), f"noted: {obstacle}",
                     f"name one of: {', '.join(OBSTACLES)}",
                     "naming the obstacle is how you fix it faster next time"))
    return out


@register(9, "classroom", lesson=9, title="your machine on the LAN: address, bind, errors",
          kind="answers", starter="ex09_answers.txt",
          usage="netlab check 9 --answers answers.txt")
def check_lan(ctx: CheckContext) -> list[Criterion]:
    if ctx.answers is None:
        raise UsageError("exercise 9 needs --answers FILE",
                         "netlab check 9 --starter > answers.txt, then fill it in")
    from netlab.diagnose.netinfo import lan_candidates
    from netlab.diagnose.probes import LiveSystem

    lan = [a.address for a in lan_candidates(LiveSystem().interfaces())]
    return grade_lan(read_answers(ctx.answers, 9), lan)
