"""The exercises and what a check receives: the registry, the context, the criteria.

A check is a function `check(ctx) -> list[Criterion]`. It starts the student's program
through the context (ctx.start), talks to it with the scripted peers (peer.py) and turns
what it saw into criteria. The classroom mode will add `ctx.server` (a class server the
student names, for the across-the-LAN proofs of lessons 1 and 9); a check that can use it
looks there, the others ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.errors import UsageError


@dataclass(frozen=True)
class Criterion:
    """One thing the exercise asks for: met or not, what happened, and why it matters."""

    name: str
    passed: bool
    detail: str
    why: str
    skipped: bool = False  # not testable on this machine (counts as passed, and says so)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "skipped": self.skipped,
                "detail": self.detail, "why": self.why}


def passed(name: str, detail: str, why: str) -> Criterion:
    return Criterion(name, True, detail, why)


def failed(name: str, detail: str, why: str) -> Criterion:
    return Criterion(name, False, detail, why)


def skipped(name: str, detail: str, why: str) -> Criterion:
    return Criterion(name, True, detail, why, skipped=True)


def judge(name: str, ok: bool, good: str, bad: str, why: str) -> Criterion:
    return Criterion(name, ok, good if ok else bad, why)


@dataclass
class CheckContext:
    """Everything a check may use. Built by the CLI; tests build their own."""

    command: list[str]  # the student's program, with {host} and {port} still in it
    timeout: float = 20.0  # a whole run of the student's program, then its tree is killed
    step: float = 5.0  # one wait: listening, an answer, a line (the contract's 5 s)
    answers: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)  # per-exercise knobs (--clients)
    server: str | None = None  # classroom (issue 9): HOST:PORT of a class server; unused here
    narrate: Callable[[str], None] = lambda _text: None
    _running: list[Any] = field(default_factory=list)

    def start(self, host: str, port: int | str, *, env: dict[str, str] | None = None,
              stdin: bool = False) -> Any:
        """Start the student's program with {host}/{port} filled in (runner.StudentProgram)."""
        from netlab.exercises.runner import StudentProgram

        prog = StudentProgram.start(self.command, str(host), str(port), timeout=self.timeout,
                                    env=env, stdin=stdin)
        self._running.append(prog)
        return prog

    def stop_all(self) -> None:
        for prog in self._running:
            prog.kill()
        self._running.clear()

    @contextmanager
    def session(self) -> Iterator[CheckContext]:
        try:
            yield self
        finally:
            self.stop_all()


Check = Callable[[CheckContext], list[Criterion]]


@dataclass(frozen=True)
class Exercise:
    number: int
    name: str  # a short slug: netlab check bind-address
    lesson: int
    title: str
    kind: str  # "client" (we are its server), "server" (we are its clients), "answers"
    starter: str  # file name under netlab/exercises/starters/
    usage: str  # how a student runs it, shown by --list and in errors
    check: Check

    @property
    def needs_command(self) -> bool:
        return self.kind != "answers"

    def starter_text(self) -> str:
        from importlib import resources

        return (resources.files("netlab.exercises") / "starters" / self.starter).read_text("utf-8")


_REGISTRY: dict[int, Exercise] = {}


def register(number: int, name: str, *, lesson: int, title: str, kind: str, starter: str,
             usage: str) -> Callable[[Check], Check]:
    def add(check: Check) -> Check:
        _REGISTRY[number] = Exercise(number, name, lesson, title, kind, starter, usage, check)
        return check

    return add


def _load() -> None:
    # The modules register themselves on import; importing them is cheap (no psutil/rich).
    from netlab.exercises import ex_answers, ex_chat, ex_clients, ex_servers  # noqa: F401


def all_exercises() -> list[Exercise]:
    _load()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def find_exercise(name: str) -> Exercise:
    """By number (4, 04, ex04) or name (framing); unknown names list the valid ones."""
    found = all_exercises()
    key = name.strip().lower().removeprefix("ex").removeprefix("lesson")
    key = key.lstrip("-_ ")
    for ex in found:
        if key == ex.name or (key.isdigit() and int(key) == ex.number):
            return ex
    names = ", ".join(f"{ex.number} ({ex.name})" for ex in found)
    raise UsageError(f"no exercise called {name!r}", f"the exercises are: {names}")
