"""The class log's events (JSON Lines, one object a line) and reading them back. Pure.

Every event has "type" and "t" (local time, ISO 8601 with milliseconds). Types and fields:
  start         host, port, drill_port, fault, password (bool), allow, deny, max_clients
  join          nick, address, port
  message       nick, address                      (no text: the log is for grading)
  leave         nick, address, reason, messages, seconds
  refused       address, reason, nick (or null)
  proof         nick, address, exercise, token, time (Unix seconds, as in the token)
  proof_failed  nick, address, exercise, reason
  drill_round   round, fault, announced
  drill_answer  nick, address, round, fault, answer, named, correct, counted
  stop          reason
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from netlab.timefmt import now_text

Event = dict[str, Any]

TYPES = ("start", "join", "message", "leave", "refused", "proof", "proof_failed",
         "drill_round", "drill_answer", "stop")


def event(kind: str, **fields: Any) -> Event:
    assert kind in TYPES, kind
    return {"type": kind, "t": now_text(), **fields}


def encode(ev: Event) -> bytes:
    # One line per event, ASCII only: a torn write can never split a multi-byte character,
    # and any editor or `grep` reads the file.
    return json.dumps(ev, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def parse_lines(lines: Iterable[bytes | str]) -> tuple[list[Event], int]:
    """(events, number of lines that are not events). A torn last line after a crash or a
    hand edit is counted, not fatal."""
    events: list[Event] = []
    bad = 0
    for raw in lines:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError:
            bad += 1
            continue
        if isinstance(item, dict) and item.get("type") in TYPES:
            events.append(item)
        else:
            bad += 1
    return events, bad
