"""Writing for people and scripts: data on stdout, narration on stderr, never a crash.

Shared by every command, so the rules live once: stdout lines are flushed at once (tests,
scripts and the projector wait for them), stderr never raises, and text is made to fit
the console's encoding (a Windows console may be cp1252).
"""

from __future__ import annotations

import contextlib
import sys

import click


def out(text: str) -> None:
    """One line of data on stdout, flushed at once."""
    click.echo(encodable(text))
    sys.stdout.flush()


def err(text: str) -> None:
    """One line of narration on stderr; a closed or broken stderr is not an error."""
    with contextlib.suppress(Exception):
        click.echo(encodable(text, sys.stderr), err=True)


def log_line(text: str) -> None:
    """One plain log line on stderr. Unlike err(), no terminal checks per call: a busy
    server logs thousands of lines a second, and the texts carry no styling."""
    with contextlib.suppress(Exception):
        sys.stderr.write(encodable(text, sys.stderr) + "\n")
        sys.stderr.flush()


def encodable(text: str, stream: object = None) -> str:
    """Replace what the stream's encoding cannot show instead of raising."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        return text
