"""Show diagnoses and explanations: readable text for people, one JSON object for scripts.

Colour only on a terminal without NO_COLOR (Environment.color); rich is imported only then,
and its console is built at call time so Click's test runner captures it. Plain text is not
wrapped, so it greps and pipes well.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

import click

from netlab.diagnose.catalog import SYSTEM_LABELS, SYSTEMS, ErrorEntry, entry_to_dict
from netlab.diagnose.explain import Explanation, Match
from netlab.diagnose.findings import Diagnosis
from netlab.diagnose.textclues import fill
from netlab.env import Environment

_STATUS_STYLE = {"ok": "green", "warning": "yellow", "problem": "bold red"}
_STATUS_LABEL = {"ok": "ok", "warning": "warning", "problem": "PROBLEM"}


class Printer:
    """Lines with an optional style and a hanging indent; colour through rich when allowed."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._console: Any = None
        self.width = shutil.get_terminal_size((100, 24)).columns if env.stdout_isatty else 0

    def line(
        self, text: str = "", style: str | None = None, indent: int = 0, hang: int = 0
    ) -> None:
        lines = [" " * indent + text] if text else [""]
        if self.width and text:
            lines = textwrap.wrap(
                text,
                width=max(40, self.width - 1),
                initial_indent=" " * indent,
                subsequent_indent=" " * (indent + hang),
                break_on_hyphens=False,
            ) or [""]
        for item in lines:
            self._emit(item, style)

    def _emit(self, text: str, style: str | None) -> None:
        if style and self.env.color:
            if self._console is None:
                from rich.console import Console

                self._console = Console(
                    file=self.env.stdout, highlight=False, soft_wrap=True, emoji=False
                )
            from rich.text import Text

            self._console.print(Text(text, style=style))
        else:
            click.echo(text, file=self.env.stdout)


def emit_json(data: dict[str, Any], env: Environment) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False), file=env.stdout)


# ----------------------------------------------------------------------- diagnoses


def render_diagnosis(d: Diagnosis, env: Environment) -> None:
    out = Printer(env)
    heading = {
        "bind": f"Can a server bind {d.target}?",
        "connect": f"Can this machine connect to {d.target}?",
        "port": f"Who uses port {d.target}?",
        "overview": f"This machine ({d.target}): interfaces and addresses",
    }.get(d.kind, d.kind)
    out.line(heading, "bold")
    for f in d.findings:
        label = _STATUS_LABEL[f.status].ljust(8)
        code = f"  [{f.code}]" if f.code and f.status != "ok" else ""
        out.line(f"{label}{f.title}{code}", _STATUS_STYLE[f.status], indent=2, hang=10)
        if f.explanation:
            out.line(f.explanation, indent=10)
        if f.fix:
            out.line(f"fix: {f.fix}", "cyan", indent=10, hang=5)
    out.line()
    out.line(d.summary(), "bold red" if d.problems else "bold green")


# ----------------------------------------------------------------------- explanations


def explanation_to_json(e: Explanation) -> dict[str, Any]:
    best = e.best
    data: dict[str, Any] = {
        "type": "explanation",
        "recognised": e.recognised,
        "certainty": best.certainty if best else None,
        "reason": best.reason if best else None,
        "systems": list(best.systems) if best else [],
        "operation": e.operation,
        "host": e.host,
        "port": e.port,
        "error": None,
        "alternatives": [
            {"name": m.entry.name, "title": m.entry.title, "reason": m.reason}
            for m in e.matches[1:]
        ],
        "number_meanings": [
            {
                "number": m.number,
                "as_written": m.label,
                "system": m.system,
                "name": m.name,
                "message": m.message,
                "socket_error": m.socket_error,
                "picked": m.picked,
            }
            for m in e.meanings
        ],
        "notes": list(e.notes),
    }
    if best is not None:
        entry = best.entry
        error = entry_to_dict(entry)
        error["fixes"] = [fill(f, e.host, e.port) for f in entry.fixes]
        error["situation"] = _situation(e, entry)
        data["error"] = error
    return data


def _situation(e: Explanation, entry: ErrorEntry) -> str | None:
    """The sentence for this call and address, when the text shows them."""
    if e.host is None and e.port is None:
        return None
    if e.operation and e.operation in entry.situations:
        return fill(entry.situations[e.operation], e.host, e.port)
    return None


def _codes_lines(entry: ErrorEntry) -> list[str]:
    lines = []
    for system in SYSTEMS:
        code = entry.codes.get(system)
        label = SYSTEM_LABELS[system].ljust(8)
        if code is None:
            lines.append(f"{label} no equivalent socket error")
            continue
        if system == "windows":
            num = f"WinError {code.number}" if code.number >= 10000 else f"{code.number}"
            name = f" {code.name}" if code.name else ""
            lines.append(f"{label} {num}{name}: {code.message}")
        elif entry.is_gai:
            lines.append(f"{label} {code.number} {code.name or entry.name}: {code.message}")
        else:
            lines.append(f"{label} Errno {code.number}: {code.message}")
    return lines


def render_explanation(e: Explanation, env: Environment) -> None:
    out = Printer(env)
    best = e.best
    if best is None:
        out.line("not recognised as a socket error", "bold red")
        for note in e.notes:
            out.line(note, indent=2)
        out.line(
            "Paste the last line of the traceback, the error number (10049, 98, -2) or its "
            "name (EADDRINUSE).",
            indent=2,
        )
        return
    entry = best.entry
    prefix = "likely " if best.certainty == "likely" else ""
    out.line(f"{prefix}{entry.name}: {entry.title}", "bold red" if not prefix else "bold yellow")
    why = "why likely" if prefix else "matched"
    out.line(f"{why}: {best.reason}", indent=2, hang=4)
    if best.systems:
        out.line("seen on: " + ", ".join(SYSTEM_LABELS[s] for s in best.systems), indent=2)
    situation = _situation(e, entry)
    if situation:
        out.line(f"here: {situation}", indent=2, hang=4)
    _render_meanings(out, e)
    out.line()
    out.line("Codes", "bold")
    for text in _codes_lines(entry):
        out.line(text, indent=2, hang=9)
    out.line(f"{'Python'.ljust(8)} {entry.python}", indent=2)
    out.line()
    out.line("What it means", "bold")
    out.line(entry.explanation, indent=2)
    if entry.causes:
        out.line()
        out.line("Common causes", "bold")
        for cause in entry.causes:
            out.line(f"- {fill(cause, e.host, e.port)}", indent=2, hang=2)
    if entry.fixes:
        out.line()
        out.line("Fixes", "bold")
        for fix in entry.fixes:
            out.line(f"- {fill(fix, e.host, e.port)}", "cyan", indent=2, hang=2)
    if entry.lesson is not None:
        out.line()
        out.line(f"Lesson {entry.lesson}: `netlab lesson {entry.lesson}`", "bold")
    _render_alternatives(out, e.matches[1:])


def _render_meanings(out: Printer, e: Explanation) -> None:
    by_label: dict[str, list[Any]] = {}
    for m in e.meanings:
        by_label.setdefault(m.label, []).append(m)
    for label, meanings in by_label.items():
        names = {m.name for m in meanings}
        if len(meanings) < 2 and all(m.socket_error for m in meanings):
            continue
        if len(names) == 1 and all(m.socket_error for m in meanings):
            continue  # the same error everywhere: nothing to warn about
        out.line(f"{label} means different things on different systems:", indent=2)
        for m in meanings:
            system = SYSTEM_LABELS[m.system].ljust(8)
            if m.socket_error:
                text = f"{system} {m.name} ({m.message})"
            elif m.name:
                text = f"{system} {m.name} ({m.message}), not a socket error"
            else:
                text = f"{system} {m.message}"
            mark = "  <- this one" if m.picked else ""
            out.line(text + mark, indent=4, hang=9)


def _render_alternatives(out: Printer, others: tuple[Match, ...]) -> None:
    if not others:
        return
    out.line()
    out.line("Also possible", "bold")
    for m in others:
        out.line(f"- {m.entry.name}: {m.entry.title} ({m.reason})", indent=2, hang=2)
        out.line(f"`netlab explain {m.entry.name}` for the details", indent=4)
