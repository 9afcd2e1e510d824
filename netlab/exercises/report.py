"""Rendering a check's result: plain text for people, one JSON object for graders.

Pure: result in, text or dict out. Colour only when the caller says the terminal wants it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.exercises.registry import Criterion, Exercise


@dataclass
class CheckResult:
    exercise: Exercise
    criteria: list[Criterion]
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)


def to_json(result: CheckResult) -> dict[str, Any]:
    ex = result.exercise
    return {
        "type": "check",
        "exercise": ex.number,
        "name": ex.name,
        "lesson": ex.lesson,
        "title": ex.title,
        "passed": result.passed,
        "criteria": [c.as_dict() for c in result.criteria],
        "duration_s": round(result.duration_s, 2),
        "notes": result.notes,
    }


def _mark(c: Criterion, color: bool) -> str:
    text = "skip" if c.skipped else ("PASS" if c.passed else "FAIL")
    if not color:
        return text
    import click

    return click.style(text, fg="yellow" if c.skipped else ("green" if c.passed else "red"),
                       bold=not c.passed)


def to_text(result: CheckResult, color: bool = False) -> str:
    ex = result.exercise
    lines = [f"Exercise {ex.number} ({ex.name}), lesson {ex.lesson}: {ex.title}", ""]
    for c in result.criteria:
        lines.append(f"  {_mark(c, color)}  {c.name}")
        lines.append(f"        {c.detail}")
        if not c.passed:
            lines.append(f"        why it matters: {c.why}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    done = sum(c.passed for c in result.criteria)
    total = len(result.criteria)
    lines.append("")
    if result.passed:
        lines.append(f"passed: {done} of {total} criteria met ({result.duration_s:.1f} s)")
    else:
        lines.append(f"not yet: {done} of {total} criteria met; see the FAIL lines "
                     f"(netlab lesson {ex.lesson} explains them)")
    return "\n".join(lines) + "\n"


def list_rows(exercises: list[Exercise], done: set[int]) -> list[dict[str, Any]]:
    return [{"exercise": ex.number, "name": ex.name, "lesson": ex.lesson, "title": ex.title,
             "kind": ex.kind, "usage": ex.usage, "passed": ex.number in done}
            for ex in exercises]


def list_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        mark = "[x]" if row["passed"] else "[ ]"
        lines.append(f"{mark} {row['exercise']:>2}  {row['name']:<16} {row['title']}")
        lines.append(f"          {row['usage']}")
    done = sum(r["passed"] for r in rows)
    lines.append("")
    lines.append(f"{done} of {len(rows)} passed")
    return "\n".join(lines) + "\n"
