"""The ladder diagram as SVG, for slides and lessons: time flows down, one column per
endpoint (IP:port, so two clients on loopback get two columns), one arrow per packet.

Plain string building, no drawing library: the file opens in any browser or Inkscape.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape

from netlab.capture.analysis import PacketEvent, endpoint_text
from netlab.capture.explain import preview
from netlab.capture.render import flag_label, numbers, role_of

COLOURS = {"syn": "#2e7d32", "fin": "#ef6c00", "rst": "#c62828", "data": "#1565c0",
           "problem": "#8e24aa", "ack": "#757575", "head": "#000000"}
ROW = 36
COLUMN = 300
LEFT = 170
TOP = 80
NOTE_CHARS = 90


def _columns(events: list[PacketEvent]) -> list[str]:
    """Endpoints in order of appearance, each stream's client before its server."""
    cols: list[str] = []
    for ev in events:
        src, dst = endpoint_text((ev.src, ev.sport)), endpoint_text((ev.dst, ev.dport))
        client, server = (src, dst) if ev.from_client else (dst, src)
        for ep in (client, server):
            if ep not in cols:
                cols.append(ep)
    return cols


def _roles(events: list[PacketEvent]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for ev in events:
        src, dst = endpoint_text((ev.src, ev.sport)), endpoint_text((ev.dst, ev.dport))
        roles.setdefault(src, "client" if ev.from_client else "server")
        roles.setdefault(dst, "server" if ev.from_client else "client")
    return roles


def ladder_svg(events: Iterable[PacketEvent], title: str = "netlab capture") -> str:
    evs = list(events)
    cols = _columns(evs)
    roles = _roles(evs)
    x_of = {ep: LEFT + i * COLUMN for i, ep in enumerate(cols)}
    notes_x = LEFT + max(len(cols) - 1, 0) * COLUMN + 40
    width = notes_x + NOTE_CHARS * 7 + 20
    height = TOP + ROW * (len(evs) + 1) + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, monospace"'
        ' font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
        "<defs>",
    ]
    for role, colour in COLOURS.items():
        out.append(f'<marker id="arrow-{role}" markerWidth="10" markerHeight="8" refX="9"'
                   f' refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="{colour}"/>'
                   "</marker>")
    out.append("</defs>")
    bottom = height - 10
    for ep in cols:
        x = x_of[ep]
        out.append(f'<text x="{x}" y="{TOP - 24}" text-anchor="middle" font-weight="bold">'
                   f"{escape(roles.get(ep, ''))} {escape(ep)}</text>")
        out.append(f'<line x1="{x}" y1="{TOP - 14}" x2="{x}" y2="{bottom}" stroke="#999"'
                   ' stroke-dasharray="4,3"/>')
    for i, ev in enumerate(evs):
        y = TOP + ROW * i + 20
        role = role_of(ev)
        colour = COLOURS[role]
        x1 = x_of[endpoint_text((ev.src, ev.sport))]
        x2 = x_of[endpoint_text((ev.dst, ev.dport))]
        label = f"{flag_label(ev)} {numbers(ev)}"
        out.append(f'<text x="10" y="{y + 4}" fill="#555">{ev.number} '
                   f"{ev.time * 1000:.3f} ms</text>")
        out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y + 12}" stroke="{colour}"'
                   f' stroke-width="2" marker-end="url(#arrow-{role})"/>')
        mid = (x1 + x2) / 2
        out.append(f'<text x="{mid:.0f}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                   f"{escape(label)}</text>")
        note = ev.explanation
        if len(note) > NOTE_CHARS:
            note = note[: NOTE_CHARS - 3] + "..."
        out.append(f'<text x="{notes_x}" y="{y + 4}">{escape(note)}</text>')
        shown = preview(ev.payload, 40)
        if shown:
            out.append(f'<text x="{notes_x}" y="{y + 17}" fill="{COLOURS["data"]}">'
                       f"{escape(shown)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
