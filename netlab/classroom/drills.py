"""Troubleshooting drills: the seeded faults, what each looks like, and grading. Pure.

Each fault says what `netlab diagnose --connect` shows for it (the outcome of the TCP
connect and the server's first line), so the drill, its test and the diagnosis agree.
Students answer with a fault's name or one of its aliases; the first answer per round counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    title: str  # the deliberate problem, for the instructor
    symptom: str  # what a student sees
    lesson: int
    # What `netlab diagnose --connect ANNOUNCED` says: the problem's code (None: connected)
    # and, when connected, the server's first line (None: it said nothing).
    diagnose_code: str | None
    first_line: str | None = None
    aliases: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("loopback-only", "the server listens on 127.0.0.1 only",
          "classmates are refused; on the server's own machine it works", 1, "ECONNREFUSED",
          aliases=("loopback", "bound-to-loopback", "127.0.0.1", "localhost-only")),
    Fault("wrong-port", "the server listens on another port than announced",
          "everyone is refused at the announced port, even on the server's machine", 7,
          "ECONNREFUSED", aliases=("port", "other-port", "different-port")),
    Fault("backlog-full", "the server stopped calling accept() and its listen backlog is full",
          "connects time out, even from the server's own machine", 6, "ETIMEDOUT",
          aliases=("backlog", "not-accepting", "accept-queue-full", "listen-backlog")),
    Fault("silent-handshake", "the server accepts but never sends NICK",
          "the connection opens and then nothing happens", 8, None, None,
          aliases=("no-nick", "silent", "nick-never-sent", "handshake")),
    Fault("reset-after-join", "the server resets each connection right after the nickname",
          "the welcome arrives, then 'connection reset by peer'", 5, None, "NICK",
          aliases=("reset", "rst-after-join", "connection-reset")),
    Fault("slow-broadcast", "the server delays every message by seconds",
          "joining works, but messages arrive seconds late", 6, None, "NICK",
          aliases=("slow", "delayed-broadcast", "lag", "slow-messages")),
)}


def normalize_answer(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower()).strip("-")


def identify(answer: str) -> str | None:
    """The fault an answer names, or None."""
    key = normalize_answer(answer)
    for fault in FAULTS.values():
        if key == fault.name or key in fault.aliases:
            return fault.name
    return None


@dataclass(frozen=True)
class Grade:
    correct: bool
    named: str | None  # the fault the answer names, if any


def grade(fault: str, answer: str) -> Grade:
    named = identify(answer)
    return Grade(named == fault, named)


def answer_menu() -> str:
    return ", ".join(FAULTS)
