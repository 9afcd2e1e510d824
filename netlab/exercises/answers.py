"""Answer files: `key: value` lines, `#` comments. Parsing and comparing are pure."""

from __future__ import annotations

import re
from pathlib import Path

from netlab.errors import NetlabError, UsageError

_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ -]*?)\s*[:=]\s*(.*?)\s*$")


def parse_answers(text: str) -> dict[str, str]:
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
                             "get a template with `netlab check NAME --starter`")
        key = re.sub(r"[\s-]+", "_", match.group(1).strip().lower())
        out[key] = match.group(2).strip().strip("\"'")
    return out


def read_answers(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"no answers file {path}",
                         "get a template with `netlab check NAME --starter > FILE`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlabError(f"cannot read answers file {path}: {exc}") from None
    return parse_answers(text)


def as_int(value: str) -> int | None:
    """A number as students write it: 1, +1, 1,000, 0x10."""
    text = value.strip().replace(",", "").replace("_", "").lstrip("+")
    try:
        return int(text, 0)
    except ValueError:
        return None


def word(value: str) -> str:
    return value.strip().lower().rstrip(".")
