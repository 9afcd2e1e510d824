"""Pure numbers for `netlab bench`: percentiles, latency summaries and plain-words verdicts.

No sockets and no clocks here, so the rules that turn measurements into a student's
verdict ("your server froze for 4.2 s when one client stopped reading") are tested alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GENERATOR_LIMIT = 80.0  # % of one core: above it the load generator, not the server, limits
FREEZE_S = 1.0  # no delivery for this long while messages were due: "your server froze"


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of already sorted values; None when empty.

    Nearest rank, not interpolation: p99 of 100 samples is the 99th value, a latency some
    message really had."""
    if not sorted_values:
        return None
    if q <= 0:
        return float(sorted_values[0])
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return float(sorted_values[min(len(sorted_values), max(1, rank)) - 1])


def summary_ms(values_ns: Iterable[int]) -> dict[str, float | None]:
    """p50 / p90 / p99 / max in milliseconds (3 decimals) of nanosecond samples."""
    ordered = sorted(values_ns)
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
        v = percentile(ordered, q)
        out[name] = None if v is None else round(v / 1e6, 3)
    out["count"] = len(ordered)
    return out


@dataclass
class Deliveries:
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0
    corrupted: int = 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.delivered)

    @property
    def percent(self) -> float:
        return 100.0 if not self.expected else round(100.0 * self.delivered / self.expected, 2)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def chat_verdict(result: dict[str, Any]) -> tuple[bool, str]:
    """The chat run: every line to every client, once and intact, and no freeze."""
    d = result
    problems = []
    if d["lost"]:
        problems.append(f"{d['lost']} of {d['expected']} deliveries never arrived "
                        f"({d['delivered_percent']} % delivered)")
    if d["corrupted"]:
        problems.append(f"{d['corrupted']} lines arrived corrupted (pieces of different lines "
                        "glued together: relay whole lines, not recv() chunks)")
    if d["duplicated"]:
        problems.append(f"{d['duplicated']} lines arrived twice")
    if d.get("freeze_s", 0) >= FREEZE_S:
        problems.append(f"your server froze: no client got anything for {_freeze(d)}")
    if problems:
        return False, "; ".join(problems)
    lat = d.get("latency_ms", {})
    tail = f", p99 {lat['p99']} ms" if lat.get("p99") is not None else ""
    return True, f"every line reached every client once, intact{tail}"


def _freeze(d: dict[str, Any]) -> str:
    if d.get("frozen_at_end"):
        return f"at least {fmt_s(d['freeze_s'])} (still frozen when the run ended)"
    return fmt_s(d["freeze_s"])


def connect_verdict(c: dict[str, Any]) -> tuple[bool, str]:
    if c["failed"]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(c["errors"].items()))
        return False, (f"{c['failed']} of {c['clients']} clients could not join ({kinds})")
    return True, f"all {c['clients']} clients joined in {fmt_s(c['seconds'])}"


def slow_verdict(s: dict[str, Any], base_p99: float | None) -> tuple[bool, str]:
    """Stalled readers: the others keep chatting, newcomers can join, the stalled go."""
    k = s["stalled"]
    who = "one client" if k == 1 else f"{k} clients"
    problems = []
    chat = s["chat"]
    if chat.get("freeze_s", 0) >= FREEZE_S:
        problems.append(f"your server froze for {_freeze(chat)} when {who} stopped reading")
    if chat["lost"]:
        problems.append(f"the others got only {chat['delivered_percent']} % of the messages")
    if not s["newcomer_ok"]:
        problems.append("a newcomer could not join and chat meanwhile")
    p99 = chat.get("latency_ms", {}).get("p99")
    # Only for paced runs: in a flood, latency is the window's queue, not the server.
    paced = chat.get("rate") is not None
    if paced and p99 is not None and base_p99 and p99 > 2 * base_p99 and p99 > 1.0:
        problems.append(f"p99 latency rose from {base_p99} ms to {p99} ms")
    growth = s.get("server_rss_growth_kib")
    if problems:
        text = "; ".join(problems)
        if growth is not None:
            text += f" (server memory grew by {growth / 1024:.1f} MiB)"
        return False, text
    dropped = s["dropped"]
    if dropped < k:
        extra = "" if growth is None else f", server memory grew by {growth / 1024:.1f} MiB"
        return True, (f"the others kept chatting, but {k - dropped} of {who} that stopped "
                      f"reading were still connected at the end{extra} (unbounded buffering "
                      "grows until memory runs out)")
    return True, f"the others kept chatting; {who} that stopped reading were dropped"


def limited_phases(cpu_percent: dict[str, float]) -> list[str]:
    """The phases ("connect worker 2", "chat") in which one of the generator's processes
    was busy enough to be the bottleneck: a figure is limited only by its own phase."""
    return sorted(name for name, p in cpu_percent.items() if p > GENERATOR_LIMIT)


def generator_note(cpu_percent: dict[str, float]) -> str | None:
    """Which processes of the generator were busy enough to be the bottleneck."""
    busy = [cpu_percent[name] for name in limited_phases(cpu_percent)]
    if not busy:
        return None
    worst = max(busy)
    return (f"limited by the load generator (one of its processes used {worst:.0f} % of a "
            "core): the server may do better than shown")
