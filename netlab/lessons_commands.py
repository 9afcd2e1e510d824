"""`netlab lessons` and `netlab lesson N`: list the lessons, show one.

Only click and netlab.lessons at import time; rich is loaded by lessons.render_terminal
when, and only when, a lesson is shown on a terminal.
"""

from __future__ import annotations

import json

import click

from netlab.env import Environment
from netlab.lessons import (
    find_lesson,
    lessons_dir,
    list_lessons,
    plain_text,
    render_terminal,
    terminal_size,
)
from netlab.output import encodable as _encodable


@click.command("lessons")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def lessons(as_json: bool) -> None:
    """List the lessons: number, title and goal."""
    directory = lessons_dir()
    found = list_lessons(directory)
    if as_json:
        click.echo(json.dumps({"type": "lessons",
                               "lessons": [lesson.as_dict() for lesson in found],
                               "directory": str(directory)}))
        return
    for lesson in found:
        click.echo(_encodable(f"{lesson.number:>2}  {lesson.title}"))
        if lesson.goal:
            click.echo(_encodable(f"    goal: {lesson.goal}"))
    click.echo("\nShow one with `netlab lesson N` (a number or a name).", err=True)


@click.command("lesson")
@click.argument("which")
@click.option("--raw", is_flag=True, help="Print the markdown source unchanged.")
@click.option("--no-pager", is_flag=True, help="Never page, even when long.")
def lesson(which: str, raw: bool, no_pager: bool) -> None:
    """Show one lesson, by number (7) or name (address-in-use).

    On a terminal the lesson is rendered (headings, code, tables) and paged when longer
    than the screen; otherwise it is printed as plain text without escape codes.
    """
    found = find_lesson(which)
    env = Environment()
    if raw:
        click.echo(_encodable(found.text), nl=False)
        return
    if not env.stdout_isatty:
        click.echo(_encodable(plain_text(found.text)), nl=False)
        return
    width, height = terminal_size()
    text = render_terminal(found.text, min(width, 100), env.color)
    if not no_pager and text.count("\n") > height - 2:
        # click's pager runs `less` with -R unless LESS says otherwise, so colours survive.
        click.echo_via_pager(text, color=env.color)
    else:
        click.echo(text, nl=False, color=env.color)
