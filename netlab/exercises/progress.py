"""Which exercises this student has passed: a small JSON file under NETLAB_HOME.

Merging a result into the progress is pure (tested without files); reading and writing
are thin. A damaged or foreign file never stops a check: it is read as empty and rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from netlab.env import netlab_home

VERSION = 1
FILE_NAME = "progress.json"


def empty() -> dict[str, Any]:
    return {"version": VERSION, "exercises": {}}


def normalise(data: object) -> dict[str, Any]:
    """Whatever was on disk, as a progress dict (unknown shapes become empty)."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return empty()
    exercises = data.get("exercises")
    if not isinstance(exercises, dict):
        return empty()
    clean = {k: v for k, v in exercises.items() if isinstance(v, dict)}
    return {"version": VERSION, "exercises": clean}


def record(progress: dict[str, Any], number: int, ok: bool, when: str) -> dict[str, Any]:
    """A new progress dict with one more attempt. Once passed stays passed: a later failed
    run (a changed program, a busy machine) does not take the pass away."""
    out = normalise(progress)
    exercises = dict(out["exercises"])
    entry = dict(exercises.get(str(number), {}))
    entry["attempts"] = int(entry.get("attempts", 0)) + 1
    entry["last_attempt"] = when
    entry["last_result"] = "passed" if ok else "failed"
    if ok:
        entry.setdefault("first_passed", when)
        entry["passed"] = True
    else:
        entry.setdefault("passed", False)
    exercises[str(number)] = entry
    return {"version": VERSION, "exercises": exercises}


def passed_numbers(progress: dict[str, Any]) -> set[int]:
    out = set()
    for key, entry in normalise(progress)["exercises"].items():
        if entry.get("passed") is True and key.isdigit():
            out.add(int(key))
    return out


def progress_path(environ: dict[str, str] | None = None) -> Path:
    return netlab_home("data", environ) / FILE_NAME


def load(path: Path | None = None) -> dict[str, Any]:
    path = path or progress_path()
    try:
        return normalise(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError):
        return empty()


def save(progress: dict[str, Any], path: Path | None = None) -> Path:
    """Write atomically (a temporary file, then rename), so a Ctrl-C never leaves half a file."""
    path = path or progress_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(progress, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
