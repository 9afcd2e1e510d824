"""`netlab class report`: the class log as one row per student, for grading. Pure."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from netlab.chat.protocol import nick_key
from netlab.classroom.events import Event

COLUMNS = ("nick", "addresses", "sessions", "first_seen", "last_seen", "messages",
           "exercises", "drills_answered", "drills_correct")


@dataclass
class Student:
    nick: str
    addresses: list[str] = field(default_factory=list)
    sessions: int = 0
    first_seen: str = ""
    last_seen: str = ""
    messages: int = 0
    exercises: list[str] = field(default_factory=list)
    drills_answered: int = 0
    drills_correct: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"nick": self.nick, "addresses": self.addresses, "sessions": self.sessions,
                "first_seen": self.first_seen, "last_seen": self.last_seen,
                "messages": self.messages, "exercises": self.exercises,
                "drills_answered": self.drills_answered, "drills_correct": self.drills_correct}

    def cells(self) -> list[str]:
        return [self.nick, " ".join(self.addresses), str(self.sessions), self.first_seen,
                self.last_seen, str(self.messages), " ".join(self.exercises),
                str(self.drills_answered), str(self.drills_correct)]


def aggregate(events: list[Event]) -> list[Student]:
    """One Student per nickname (case-insensitive, as the chat treats them), in order of
    first appearance. Messages are counted from message events, so a kill -9 loses none."""
    students: dict[str, Student] = {}

    def get(ev: Event) -> Student | None:
        nick = ev.get("nick")
        if not isinstance(nick, str) or not nick:
            return None
        st = students.setdefault(nick_key(nick), Student(nick))
        t = str(ev.get("t", ""))
        st.first_seen = st.first_seen or t
        st.last_seen = max(st.last_seen, t)
        address = ev.get("address")
        if isinstance(address, str) and address and address not in st.addresses:
            st.addresses.append(address)
        return st

    for ev in events:
        kind = ev.get("type")
        if kind not in ("join", "message", "leave", "proof", "drill_answer"):
            continue
        st = get(ev)
        if st is None:
            continue
        if kind == "join":
            st.sessions += 1
            st.nick = ev["nick"]
        elif kind == "message":
            st.messages += 1
        elif kind == "proof":
            exercise = str(ev.get("exercise", ""))
            if exercise and exercise not in st.exercises:
                st.exercises.append(exercise)
        elif kind == "drill_answer" and ev.get("counted", True):
            st.drills_answered += 1
            st.drills_correct += bool(ev.get("correct"))
    for st in students.values():
        st.exercises.sort()
    return list(students.values())


def to_csv(students: list[Student]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for st in students:
        writer.writerow(st.cells())
    return out.getvalue()


def to_text(students: list[Student]) -> str:
    """An aligned plain table (pipes and greps well; no colour needed)."""
    rows = [list(COLUMNS), *[st.cells() for st in students]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    return "\n".join(lines) + "\n"
