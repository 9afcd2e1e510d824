"""Text renderers: the live narration, the ladder diagram, Follow TCP Stream, JSON Lines.

Pure string building from PacketEvents and ConnectionSummaries; the command decides where
each string goes (data to stdout, narration to stderr). ASCII arrows only, so a Windows
cp1252 console prints them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netlab.capture.analysis import ConnectionSummary, PacketEvent, endpoint_text
from netlab.capture.decode import flags_names, parse_flags
from netlab.capture.explain import preview

Style = Callable[[str, str], str]  # (text, role) -> text; roles below


def plain(text: str, role: str) -> str:
    return text


def click_style(text: str, role: str) -> str:
    import click

    colours = {"syn": "green", "fin": "yellow", "rst": "red", "data": "blue",
               "problem": "magenta", "ack": "bright_black", "head": "cyan"}
    colour = colours.get(role)
    return click.style(text, fg=colour, bold=role == "head") if colour else text


def role_of(ev: PacketEvent) -> str:
    if ev.kind in ("retransmission", "dup-ack", "syn-retry", "keepalive"):
        return "problem"
    if "R" in ev.flags:
        return "rst"
    if "S" in ev.flags:
        return "syn"
    if "F" in ev.flags:
        return "fin"
    if ev.length:
        return "data"
    return "ack"


def direction(ev: PacketEvent) -> str:
    return "client -> server" if ev.from_client else "server -> client"


def numbers(ev: PacketEvent) -> str:
    text = f"seq={ev.seq}"
    if "A" in ev.flags:
        text += f" ack={ev.ack}"
    if ev.length:
        text += f" len={ev.length}"
    return text


def flag_label(ev: PacketEvent) -> str:
    return flags_names(parse_flags(ev.flags))


def stream_header(ev: PacketEvent) -> str:
    src, dst = endpoint_text((ev.src, ev.sport)), endpoint_text((ev.dst, ev.dport))
    client, server = (src, dst) if ev.from_client else (dst, src)
    return f"stream {ev.stream}: client {client}  <->  server {server}"


def packet_line(ev: PacketEvent, style: Style = plain) -> str:
    """One line per packet: number, time, stream, direction, flags, numbers, meaning."""
    head = f"{ev.number:>4} {ev.time * 1000:>10.3f} ms  #{ev.stream} {direction(ev)}"
    body = f"{flag_label(ev):<8} {numbers(ev):<26}"
    text = f"{head}  {style(body, role_of(ev))} {ev.explanation}"
    shown = preview(ev.payload)
    return f"{text}  {shown}" if shown else text


def follow_chunk(ev: PacketEvent, style: Style = plain) -> str | None:
    """A data segment's bytes as transcript text (retransmitted copies are not repeated)."""
    if not ev.length or ev.kind in ("retransmission", "keepalive"):
        return None
    text = ev.payload.decode("utf-8", "replace")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    who = "client>" if ev.from_client else "server<"
    role = "data" if ev.from_client else "syn"
    tag = style(f"#{ev.stream} {who}", role)
    return "\n".join(f"{tag} {line}" for line in lines)


def packet_json(ev: PacketEvent) -> dict[str, Any]:
    return {
        "type": "packet", "number": ev.number, "time": round(ev.time, 6), "stream": ev.stream,
        "src": ev.src, "sport": ev.sport, "dst": ev.dst, "dport": ev.dport,
        "flags": ev.flags, "seq": ev.seq, "ack": ev.ack, "len": ev.length,
        "window": ev.window, "direction": "client-to-server" if ev.from_client
        else "server-to-client", "kind": ev.kind, "explanation": ev.explanation,
        "payload_preview": preview(ev.payload, 80),
    }


def connection_json(conn: ConnectionSummary) -> dict[str, Any]:
    # Field names differ from the packet's on purpose, so a reader can tell them apart
    # by any key (the summary has "connection", never "stream").
    return {
        "type": "connection", "connection": conn.index, "client": conn.client,
        "server": conn.server, "packets": conn.packets, "client_bytes": conn.client_bytes,
        "server_bytes": conn.server_bytes, "handshake": conn.handshake, "ending": conn.ending,
        "retransmissions": conn.retransmissions, "duplicate_acks": conn.duplicate_acks,
        "syn_retries": conn.syn_retries, "mid_stream": conn.mid_stream,
        "duration_ms": round(conn.duration * 1000, 3), "nicknames": conn.nicknames,
    }


def json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def summary_text(connections: Iterable[ConnectionSummary], packets: int) -> str:
    conns = list(connections)
    lines = [f"summary: {packets} TCP packet{'s' if packets != 1 else ''},"
             f" {len(conns)} connection{'s' if len(conns) != 1 else ''}"]
    for c in conns:
        lines.append(f"  stream {c.index}: client {c.client} -> server {c.server}")
        lines.append(f"    {c.packets} packet{'s' if c.packets != 1 else ''} over"
                     f" {c.duration * 1000:.3f} ms;"
                     f" client sent {c.client_bytes} bytes, server sent {c.server_bytes}")
        lines.append(f"    handshake: {c.handshake}; ending: {c.ending}")
        problems = []
        if c.retransmissions:
            problems.append(f"{c.retransmissions} retransmission(s)")
        if c.duplicate_acks:
            problems.append(f"{c.duplicate_acks} duplicate ACK(s)")
        if c.syn_retries:
            problems.append(f"{c.syn_retries} SYN retr{'ies' if c.syn_retries > 1 else 'y'}")
        lines.append("    " + (", ".join(problems) if problems else "no retransmissions,"
                                " no duplicate ACKs"))
        if c.nicknames:
            lines.append(f"    chat nickname: {', '.join(c.nicknames)}")
    return "\n".join(lines)


@dataclass
class Recorder:
    """Keeps the events a ladder needs, with a cap so a huge capture stays small in memory."""

    limit: int = 400
    events: list[PacketEvent] = field(default_factory=list)
    dropped: int = 0

    def add(self, ev: PacketEvent) -> None:
        if len(self.events) < self.limit:
            self.events.append(ev)
        else:
            self.dropped += 1


LADDER_WIDTH = 60


def _arrow(label: str, rightwards: bool, width: int = LADDER_WIDTH) -> str:
    room = width - 6
    if len(label) > room:
        label = label[: room - 3] + "..."
    label = f" {label} "
    left = (width - 2 - len(label)) // 2
    right = width - 2 - len(label) - left
    if rightwards:
        return "|" + "-" * left + label + "-" * (right - 1) + ">|"
    return "|<" + "-" * (left - 1) + label + "-" * right + "|"


def ladder_text(events: Iterable[PacketEvent], style: Style = plain,
                note_width: int = 72) -> str:
    """One two-column ladder per stream: client on the left, server on the right."""
    by_stream: dict[int, list[PacketEvent]] = {}
    for ev in events:
        by_stream.setdefault(ev.stream, []).append(ev)
    out: list[str] = []
    for evs in by_stream.values():
        first = evs[0]
        src, dst = endpoint_text((first.src, first.sport)), endpoint_text((first.dst, first.dport))
        client, server = (src, dst) if first.from_client else (dst, src)
        out.append(style(f"ladder, stream {first.stream}", "head"))
        pad = " " * 19
        out.append(f"{pad}{('client ' + client):<{LADDER_WIDTH // 2}}"
                   f"{('server ' + server):>{LADDER_WIDTH // 2}}")
        for ev in evs:
            label = f"{flag_label(ev)} {numbers(ev)}"
            shown = preview(ev.payload, 16)
            if shown:
                label += f" {shown}"
            arrow = style(_arrow(label, ev.from_client), role_of(ev))
            note = ev.explanation
            if len(note) > note_width:
                note = note[: note_width - 3] + "..."
            out.append(f"{ev.number:>4} {ev.time * 1000:>10.3f} ms {arrow}  {note}")
        out.append("")
    return "\n".join(out).rstrip("\n")
