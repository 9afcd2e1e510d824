"""`netlab lessons` and `netlab lesson N`: listing, lookup, rendering, and the lesson shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab import lessons_commands
from netlab.cli import cli
from netlab.lessons import find_lesson, list_lessons, parse_info, plain_text, render_terminal

ROOT = Path(__file__).resolve().parent.parent
LESSONS = list_lessons(ROOT / "lessons")
SECTIONS = ("## The idea", "## Predict first", "## Try it", "## What this corrects",
            "## Common errors", "## Exercise")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_eleven_lessons_exist_with_title_and_goal() -> None:
    assert [lesson.number for lesson in LESSONS] == list(range(11))
    for lesson in LESSONS:
        assert lesson.title and not lesson.title.startswith("Lesson"), lesson.name
        assert len(lesson.goal) > 20, lesson.name


@pytest.mark.parametrize("lesson", LESSONS[1:], ids=lambda lesson: lesson.name)
def test_lessons_1_to_10_have_every_section(lesson) -> None:  # type: ignore[no-untyped-def]
    positions = [lesson.text.find(section) for section in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert "netlab explain" in lesson.text or "netlab diagnose" in lesson.text
    assert "netlab check" in lesson.text


def test_list() -> None:
    code, out, err = run("lessons")
    assert code == 0
    for lesson in LESSONS:
        assert f"{lesson.number:>2}  {lesson.title}" in out
        assert f"goal: {lesson.goal}" in out
    assert "netlab lesson N" in err  # narration on stderr, the list on stdout
    assert "netlab lesson N" not in out


def test_list_json_is_one_object_on_stdout() -> None:
    code, out, _err = run("lessons", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["type"] == "lessons"  # as every --json object has
    assert [item["number"] for item in data["lessons"]] == list(range(11))
    first = data["lessons"][7]
    assert first["slug"] == "address-in-use"
    assert first["file"] == "07-address-in-use.md"
    assert first["title"] == 'Address already in use'.join('""')
    assert first["goal"].startswith("When a server cannot bind")


@pytest.mark.parametrize("key", ["7", "07", "address-in-use", "07-address-in-use",
                                 "07-address-in-use.md", "address-in", "ADDRESS-IN-USE"])
def test_lookup_by_number_slug_or_prefix(key: str) -> None:
    assert find_lesson(key, LESSONS).number == 7


@pytest.mark.parametrize(("key", "message"), [
    ("11", "no lesson number 11"), ("nosuch", "no lesson called 'nosuch'"),
    ("a", "could mean several lessons: addresses-ports, address-in-use"),
    ("", "which lesson? give its number or name"), ("  ", "which lesson?"),
])
def test_unknown_lesson_is_a_usage_error(key: str, message: str) -> None:
    code, out, err = run("lesson", key)
    assert code == 2
    assert out == ""
    assert message in err
    assert "netlab lessons" in err  # the hint says where to look
    assert "Traceback" not in err


def test_show_plain_when_not_a_terminal() -> None:
    code, out, _err = run("lesson", "4")
    assert code == 0
    assert out.startswith("# Lesson 4: Message framing")
    assert "\x1b" not in out  # no escape codes in a pipe or a file
    assert "```python\n" in out and "```python run" not in out  # runner tags hidden
    code, raw, _err = run("lesson", "4", "--raw")
    assert code == 0 and "```python run" in raw


def test_plain_text_keeps_only_the_language() -> None:
    text = "```console run server exit=1\n$ netlab serve\n```\n~~~python norun: why\nx\n~~~\n"
    assert plain_text(text) == "```console\n$ netlab serve\n```\n~~~python\nx\n~~~\n"


def test_terminal_rendering_has_headings_code_and_tables() -> None:
    lesson = find_lesson("2", LESSONS)
    shown = render_terminal(lesson.text, width=100, color=True)
    assert "\x1b[" in shown
    assert "Reading connection errors" in shown
    assert "ECONNREFUSED" in shown and "10061" in shown
    assert "```" not in shown  # code blocks are drawn, not shown as fences
    assert "─" * 20 in shown  # tables are drawn, with a rule under the header


def test_long_lesson_on_a_terminal_is_paged(monkeypatch: pytest.MonkeyPatch) -> None:
    paged: list[str] = []
    monkeypatch.setattr(lessons_commands.Environment, "stdout_isatty", property(lambda self: True))
    monkeypatch.setattr(lessons_commands, "terminal_size", lambda: (100, 30))
    monkeypatch.setattr(lessons_commands.click, "echo_via_pager",
                        lambda text, color=None: paged.append(text))
    code, out, _err = run("lesson", "0")
    assert code == 0
    assert out == ""
    assert len(paged) == 1 and "The chat protocol reference" in paged[0]
    code, out, _err = run("lesson", "0", "--no-pager")
    assert code == 0 and len(paged) == 1 and "The chat protocol reference" in out


def test_lessons_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "01-mine.md").write_text("# My lesson\n\n**Goal:** learn one thing well.\n")
    (tmp_path / "notes.md").write_text("not a lesson\n")
    monkeypatch.setenv("NETLAB_LESSONS_DIR", str(tmp_path))
    code, out, _err = run("lessons", "--json")
    assert code == 0
    assert json.loads(out)["lessons"] == [{"number": 1, "slug": "mine", "title": "My lesson",
                                          "goal": "learn one thing well.", "file": "01-mine.md"}]
    monkeypatch.setenv("NETLAB_LESSONS_DIR", str(tmp_path / "missing"))
    code, _out, err = run("lessons")
    assert code == 2 and "is not a directory" in err


def test_parse_info() -> None:
    assert parse_info("console run server exit=1") == (
        "console", frozenset({"run", "server"}), {"exit": "1"}, None)
    assert parse_info("python norun: needs a LAN") == (
        "python", frozenset({"norun"}), {}, "needs a LAN")
    assert parse_info("console capture")[1] == frozenset({"capture", "run"})
    assert parse_info("text") == ("text", frozenset(), {}, None)


def test_commands_import_no_heavy_modules() -> None:
    code = ("import sys, netlab.lessons_commands, netlab.lessons; "
            "print(sorted(m for m in ('rich', 'rich.markdown', 'psutil', 'scapy', "
            "'prompt_toolkit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
