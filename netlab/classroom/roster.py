"""The live roster: who is connected, from where, since when, and what they did.

RosterState is pure and is fed the class log's events after they are on disk, so the
roster never shows what the log lacks. On a terminal a rich table refreshes in place
(rich is imported only then); elsewhere each event becomes one plain line.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from netlab.chat.protocol import nick_key
from netlab.classroom.events import Event


@dataclass
class Row:
    nick: str
    address: str
    since: str
    messages: int = 0
    exercises: list[str] = field(default_factory=list)


class RosterState:
    def __init__(self) -> None:
        self.online: dict[str, Row] = {}
        self.done: dict[str, list[str]] = {}  # exercises per nickname, across reconnects
        self.recent: list[str] = []  # the last few events, as lines

    def apply(self, ev: Event) -> str | None:
        """Update from one event; returns the plain line for it (None: not shown)."""
        kind, nick = ev.get("type"), str(ev.get("nick") or "")
        key = nick_key(nick) if nick else ""
        line: str | None = None
        if kind == "join":
            self.online[key] = Row(nick, ev["address"], str(ev["t"])[11:19],
                                   exercises=self.done.get(key, []))
            line = f"+ {nick} joined from {ev['address']}"
        elif kind == "leave":
            self.online.pop(key, None)
            line = f"- {nick} left ({ev['reason']}) after {ev['messages']} messages"
        elif kind == "message" and key in self.online:
            self.online[key].messages += 1
        elif kind == "proof":
            done = self.done.setdefault(key, [])
            if ev["exercise"] not in done:
                done.append(ev["exercise"])
                done.sort()
            if key in self.online:
                self.online[key].exercises = done
            line = f"* {nick} proved exercise {ev['exercise']} from {ev['address']}"
        elif kind == "proof_failed":
            line = f"* {nick} tried exercise {ev['exercise']}: {ev['reason']}"
        elif kind == "refused":
            who = f"{nick} at {ev['address']}" if nick else str(ev["address"])
            line = f"x refused {who}: {ev['reason']}"
        elif kind == "drill_answer":
            verdict = "correct" if ev["correct"] else "wrong"
            extra = "" if ev.get("counted", True) else " (again; not counted)"
            line = f"? {nick} answered round {ev['round']}: {verdict}{extra}"
        if line is not None:
            self.recent = [*self.recent[-7:], line]
        return line


class PlainRoster:
    """Not a terminal: one line per event, flushed (scripts and tests read them)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.state = RosterState()
        self.out = out or sys.stdout

    def __call__(self, ev: Event) -> None:
        line = self.state.apply(ev)
        if line is not None:
            with contextlib.suppress(Exception):
                self.out.write(line + "\n")
                self.out.flush()

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LiveRoster:
    """A terminal: a rich table, redrawn in place once a second and on every event."""

    def __init__(self, title: str) -> None:
        self.state = RosterState()
        self.title = title
        self._lock = threading.Lock()  # the roster's own; never the room lock
        self._live: Any = None

    def __call__(self, ev: Event) -> None:
        with self._lock:
            self.state.apply(ev)
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.update(self._table(), refresh=True)

    def _table(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            rows = list(self.state.online.values())
            recent = list(self.state.recent)
        table = Table(title=f"{self.title}: {len(rows)} online", expand=False)
        for name in ("nickname", "address", "since", "messages", "exercises"):
            table.add_column(name, justify="right" if name == "messages" else "left")
        for row in rows:
            table.add_row(row.nick, row.address, row.since, str(row.messages),
                          " ".join(row.exercises) or "-")
        return Group(table, Text("\n".join(recent), style="dim"))

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(self._table(), refresh_per_second=1, transient=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            with contextlib.suppress(Exception):
                self._live.stop()
            self._live = None
