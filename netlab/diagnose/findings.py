"""A diagnosis is a list of findings: what was checked, what came out, and the fix.

Probes return findings; renderers show them; the exit code follows from them (1 when any
finding is a problem). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from netlab.errors import ExitStatus

Status = Literal["ok", "warning", "problem"]
STATUSES: tuple[Status, ...] = ("ok", "warning", "problem")


@dataclass(frozen=True)
class Finding:
    status: Status
    title: str
    explanation: str = ""
    fix: str = ""
    code: str | None = None  # catalog name (EADDRNOTAVAIL) when a socket error explains it
    data: dict[str, Any] = field(default_factory=dict)  # facts for scripts: pid, addresses, ...

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "finding",
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "explanation": self.explanation,
            "fix": self.fix,
        }
        if self.data:
            out["data"] = self.data
        return out


def ok(title: str, explanation: str = "", **data: Any) -> Finding:
    return Finding("ok", title, explanation, data=data)


@dataclass
class Diagnosis:
    """What `netlab diagnose` found for one question (--bind, --connect, --port, overview)."""

    kind: str  # "bind", "connect", "port", "overview"
    target: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        return finding

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "warning"]

    @property
    def exit_code(self) -> int:
        # Warnings are advice; only a problem makes the answer "no".
        return ExitStatus.NO if self.problems else ExitStatus.OK

    def summary(self) -> str:
        counts = {s: sum(1 for f in self.findings if f.status == s) for s in STATUSES}
        parts = []
        if counts["problem"]:
            parts.append(f"{counts['problem']} problem{'s' if counts['problem'] > 1 else ''}")
        if counts["warning"]:
            parts.append(f"{counts['warning']} warning{'s' if counts['warning'] > 1 else ''}")
        parts.append(f"{counts['ok']} ok")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "diagnosis",
            "kind": self.kind,
            "target": self.target,
            "ok": not self.problems,
            "summary": self.summary(),
            "findings": [f.to_json() for f in self.findings],
        }
