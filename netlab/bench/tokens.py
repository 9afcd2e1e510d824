"""Tokens: what each benchmark line carries, and how received lines are scanned for them.

A token is `~T<run>.<sender>.<seq>.<sent_us>.<padding>.<crc32>~`, all hex. It is found
anywhere in a received line, so a server that prefixes lines (`alice: `, `<user5> `) or
glues them together still counts. The CRC covers everything before it: a token cut by
another sender's chunk (a server relaying raw recv() pieces) fails it and is counted as
corrupted, never as delivered. The sender clock is time.monotonic_ns(), which on Linux,
macOS and Windows is one clock for every process of the machine, so worker processes
can measure latency against each other's timestamps.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

START = b"~T"
_TOKEN = re.compile(rb"~T([0-9a-f]{1,8})\.([0-9a-f]{1,6})\.([0-9a-f]{1,8})\.([0-9a-f]{1,16})"
                    rb"\.(x*)\.([0-9a-f]{8})~")
MIN_LINE = 48  # a token with no padding and its newline fit in this


def encode(run: int, sender: int, seq: int, sent_us: int, size: int = 100) -> bytes:
    """One line of about `size` bytes (newline included) carrying a token."""
    head = b"%x.%x.%x.%x." % (run, sender, seq, sent_us)
    # 2 for "~T", 1 for ".", 8 for the CRC, 1 for "~", 1 for "\n"
    pad = max(0, size - len(head) - 13)
    body = head + b"x" * pad
    return b"~T%s.%08x~\n" % (body, zlib.crc32(body))


@dataclass
class Found:
    """What one scan of one line found."""

    tokens: list[tuple[int, int, int]] = field(default_factory=list)  # (sender, seq, sent_us)
    corrupted: int = 0
    foreign: int = 0  # valid tokens of another run (an earlier bench against the same room)


def scan(line: bytes, run: int, found: Found) -> None:
    """Add the tokens of `line` to `found`; every start marker that is not the start of a
    valid token counts as one corrupted delivery."""
    starts = line.count(START)
    if not starts:
        return
    valid = 0
    for m in _TOKEN.finditer(line):
        body_end = m.start(6) - 1
        body = line[m.start() + 2:body_end]
        if zlib.crc32(body) != int(m.group(6), 16):
            continue
        valid += 1
        if int(m.group(1), 16) != run:
            found.foreign += 1
            continue
        found.tokens.append((int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)))
    found.corrupted += starts - valid
