"""Wall-clock time as netlab's event streams write it (the class log, `serve --json`)."""

from __future__ import annotations

from datetime import datetime


def now_text() -> str:
    """Local time with its offset, to the millisecond: 2026-11-24T13:30:00.123+01:00."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")
