"""Answer files: `key: value` lines, `#` comments. Parsing and comparing are pure."""

from __future__ import annotations

import re
from pathlib import Path

from netlab.errors import NetlabError, UsageError

_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ -]*?)\s*[:=]\s*(.*?)\s*$")


def parse_answers(text: str, exercise: int | str = "NAME") -> dict[str, str]:
    """Keys are lower-case with spaces and dashes as underscores; empty values are kept
    as '' (a question not answered yet). A line that is neither is an error with its
    number, so a typo is found at once."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            raise UsageError(f"answers line {number} is not `key: value`: {raw.strip()!r}",
                             f"get a template with `netlab check {exercise} --starter`")
        key = re.sub(r"[\s-]+", "_", match.group(1).strip().lower())
        out[key] = match.group(2).strip().strip("\"'")
    return out


def read_answers(path: Path, exercise: int | str = "NAME") -> dict[str, str]:
    """The answers file, parsed; a file that cannot be read is exit 3 with what to do."""
    template = f"get a template with `netlab check {exercise} --starter > answers.txt`"
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise NetlabError(f"no answers file {path}", template) from None
    except IsADirectoryError:
        raise NetlabError(f"cannot read answers file {path}: it is a directory",
                          template) from None
    except UnicodeDecodeError:
        raise NetlabError(f"{path} is not a text file (not UTF-8): answers are plain text",
                          template) from None
    except OSError as exc:
        raise NetlabError(f"cannot read answers file {path}: {exc.strerror or exc}") from None
    return parse_answers(text, exercise)


def as_int(value: str) -> int | None:
    """A number as students write it: 1, +1, 1,000, 0x10."""
    text = value.strip().replace(",", "").replace("_", "").lstrip("+")
    try:
        return int(text, 0)
    except ValueError:
        return None


def word(value: str) -> str:
    return value.strip().lower().rstrip(".")
