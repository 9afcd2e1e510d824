"""The lessons: find them, list them, parse their code blocks, render them.

Lessons are markdown files `NN-slug.md`. In the repository they live in `lessons/` at the
top; a wheel carries a copy inside the package as `netlab/_lessons` (hatch force-include),
because package data is the only place an installed program can find its files again.
An editable install imports netlab from the checkout, where there is no `_lessons`, so the
checkout's `lessons/` is looked at next. NETLAB_LESSONS_DIR overrides both (an instructor's
own set).

Code blocks carry a small contract in their fence (lessons/README.md explains it):
```` ```console run server ```` is executed by the tests, ```` ```console norun: why ````
is not. Rich is imported only to render for a terminal.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from netlab.errors import NetlabError, UsageError

LESSON_FILE = re.compile(r"^(\d{2})-([a-z0-9][a-z0-9-]*)\.md$")
# Languages whose blocks could be run; each such block must say `run` or `norun`.
EXECUTABLE_LANGS = frozenset({"python", "console", "sh", "bash", "shell", "powershell", "pwsh"})
KNOWN_TAGS = frozenset({"run", "norun", "server", "capture"})


@dataclass(frozen=True)
class Block:
    """One fenced code block and what its fence says about running it."""

    lang: str
    info: str  # the whole info string, e.g. "console run server exit=1"
    code: str
    line: int  # 1-based line of the opening fence in the file
    tags: frozenset[str] = frozenset()
    options: Mapping[str, str] = field(default_factory=dict)
    norun_reason: str | None = None

    @property
    def runnable(self) -> bool:
        return "run" in self.tags

    @property
    def needs_server(self) -> bool:
        return "server" in self.tags

    @property
    def needs_capture(self) -> bool:
        return "capture" in self.tags

    def commands(self) -> list[str]:
        """The `$ ` lines of a console block (a trailing `\\` continues a command)."""
        out: list[str] = []
        current: str | None = None
        for raw in self.code.splitlines():
            if current is not None:
                current += "\n" + raw
                if not raw.endswith("\\"):
                    out.append(current)
                    current = None
                continue
            if raw.startswith("$ "):
                cmd = raw[2:]
                if cmd.endswith("\\"):
                    current = cmd
                else:
                    out.append(cmd)
        if current is not None:
            out.append(current)
        return out


def parse_info(info: str) -> tuple[str, frozenset[str], dict[str, str], str | None]:
    """`console run server exit=1` -> ("console", {"run","server"}, {"exit": "1"}, None).

    `norun` takes the rest of the line as its reason: ```` ```console norun: needs a LAN ````.
    """
    info = info.strip()
    lang, _, rest = info.partition(" ")
    tags: set[str] = set()
    options: dict[str, str] = {}
    reason: str | None = None
    words = rest.split()
    for i, word in enumerate(words):
        if word.startswith("norun"):
            tags.add("norun")
            tail = " ".join([word[len("norun"):], *words[i + 1:]]).strip()
            reason = tail.lstrip(":").strip() or None
            break
        if "=" in word:
            key, _, value = word.partition("=")
            options[key] = value
        else:
            tags.add(word)
    if tags & {"server", "capture"}:
        tags.add("run")
    return lang, frozenset(tags), options, reason


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def parse_blocks(text: str) -> list[Block]:
    """Fenced code blocks in order (``` or ~~~ fences, closed by one at least as long)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[i])
            i += 1
        i += 1
        lang, tags, options, reason = parse_info(m.group("info"))
        blocks.append(Block(lang, m.group("info").strip(), "\n".join(body) + "\n", start + 1,
                            tags, options, reason))
    return blocks


@dataclass(frozen=True)
class Lesson:
    number: int
    slug: str
    path: Path

    @cached_property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def title(self) -> str:
        for line in self.text.splitlines():
            if line.startswith("# "):
                # "# Lesson 3: TCP is a byte stream" -> "TCP is a byte stream"
                return re.sub(r"^Lesson\s+\d+\s*[:.\-—–]\s*", "", line[2:].strip())
        return self.slug.replace("-", " ")

    @cached_property
    def goal(self) -> str:
        m = re.search(r"^\*\*Goal:?\*\*:?\s*(.+?)\s*$", self.text, re.MULTILINE)
        return m.group(1).strip() if m else ""

    @property
    def name(self) -> str:
        return self.path.stem

    def blocks(self) -> list[Block]:
        return parse_blocks(self.text)

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "slug": self.slug, "title": self.title,
                "goal": self.goal, "file": self.path.name}


# --- finding ---------------------------------------------------------------------------

def _packaged_dir() -> Path | None:
    try:
        root = resources.files("netlab").joinpath("_lessons")
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - netlab always importable
        return None
    # A wheel installs real files, so the traversable is a path on disk.
    path = Path(str(root))
    return path if path.is_dir() else None


def _checkout_dir() -> Path | None:
    """`<checkout>/lessons` when netlab is imported from a source tree (editable install)."""
    package = Path(__file__).resolve().parent
    root = package.parent
    candidate = root / "lessons"
    if candidate.is_dir() and (root / "pyproject.toml").is_file():
        return candidate
    return None


def lessons_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get("NETLAB_LESSONS_DIR")
    if override:
        path = Path(override)
        if not path.is_dir():
            raise UsageError(f"NETLAB_LESSONS_DIR={override} is not a directory")
        return path
    for found in (_packaged_dir(), _checkout_dir()):
        if found is not None:
            return found
    raise NetlabError(
        "the lessons are not installed with this copy of netlab",
        "reinstall netlab from a wheel or the repository (pip install netlab-sockets), "
        "or set NETLAB_LESSONS_DIR to a folder of NN-slug.md files",
    )


def list_lessons(directory: Path | None = None) -> list[Lesson]:
    directory = lessons_dir() if directory is None else directory
    found = []
    for path in directory.iterdir():
        m = LESSON_FILE.match(path.name)
        if m and path.is_file():
            found.append(Lesson(int(m.group(1)), m.group(2), path))
    return sorted(found, key=lambda lesson: lesson.number)


def find_lesson(key: str, lessons: Iterable[Lesson] | None = None) -> Lesson:
    """By number ("7", "07"), slug ("address-in-use"), file stem, or a unique slug prefix."""
    all_lessons = list_lessons() if lessons is None else list(lessons)
    wanted = key.strip().lower().removesuffix(".md")
    numbers = ", ".join(str(lesson.number) for lesson in all_lessons)
    hint = f"`netlab lessons` lists them (numbers {numbers})" if all_lessons else None
    if not wanted:
        raise UsageError("which lesson? give its number or name, e.g. `netlab lesson 7`", hint)
    if wanted.isdigit():
        for lesson in all_lessons:
            if lesson.number == int(wanted):
                return lesson
        raise UsageError(f"no lesson number {int(wanted)}", hint)
    for lesson in all_lessons:
        if wanted in (lesson.slug, lesson.name):
            return lesson
    matches = [lesson for lesson in all_lessons
               if lesson.slug.startswith(wanted) or lesson.name.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(lesson.slug for lesson in matches)
        raise UsageError(f"'{key}' could mean several lessons: {names}", hint)
    raise UsageError(f"no lesson called '{key}'", hint)


# --- rendering -------------------------------------------------------------------------

def plain_text(lesson_text: str) -> str:
    """The markdown as a person reads it without a terminal: fences keep only the language.

    Markdown is already readable as text; only the runner's fence tags are noise here.
    """
    out = []
    for line in lesson_text.splitlines():
        m = _FENCE.match(line)
        if m and m.group("info").strip():
            lang = m.group("info").split()[0]
            line = f"{m.group('indent')}{m.group('fence')}{lang}"
        out.append(line)
    return "\n".join(out) + "\n"


def render_terminal(lesson_text: str, width: int, color: bool) -> str:
    """Headings, highlighted code and tables for a terminal, as one string with escapes."""
    import io

    from rich.console import Console
    from rich.markdown import Markdown

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width,
                      color_system="auto" if color else None, no_color=not color,
                      legacy_windows=False)
    console.print(Markdown(plain_text(lesson_text), code_theme="ansi_dark"))
    return buffer.getvalue()


def terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((100, 40))
    return size.columns, size.lines
