"""Clues in pasted text besides the error itself: the address, the call that failed. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

from netlab.diagnose.catalog import ErrorEntry
from netlab.diagnose.netinfo import parse_ip

_OPERATIONS: list[tuple[str, re.Pattern[str]]] = [
    ("bind", re.compile(r"\b(bind|listen|jvm_bind|bindexception)\b", re.I)),
    (
        "connect",
        re.compile(
            r"\b(connect|connectex|dial|create_connection|connectexception"
            r"|newconnectionerror)\b",
            re.I,
        ),
    ),
    ("accept", re.compile(r"\baccept\b", re.I)),
    ("send", re.compile(r"\b(send|sendall|sendto|write)\b", re.I)),
    ("recv", re.compile(r"\b(recv|recvfrom|read)\b", re.I)),
]

_ADDRESS_PATTERNS: list[re.Pattern[str]] = [
    re.compile(r"\(\s*['\"]([^'\"]*)['\"]\s*,\s*(\d{1,5})\s*[,)]"),  # ('::1', 8888, 0, 0)
    re.compile(r"host=['\"]([^'\"]+)['\"],\s*port=(\d{1,5})"),  # urllib3
    re.compile(r"address:\s*'([^']*)',\s*port:\s*(\d{1,5})"),  # Node's error object
    re.compile(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})\b"),
    re.compile(r"(?<![\w.])((?:\d{1,3}\.){3}\d{1,3}):(\d{1,5})\b"),
    re.compile(r"(?<![\w:])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}):(\d{1,5})\b"),  # :::3000
    re.compile(r"\b(?:tcp|udp)[46]?\s+()[:](\d{1,5})\b"),  # Go: listen tcp :8080
    re.compile(
        r"(?<![\w/.@-])(localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}):(\d{1,5})(?![\d:])"
    ),
]


# A stack trace's "Server.java:7" or "app.py:12" is a file and a line, not a host and port.
_SOURCE_FILES = frozenset({"c", "cc", "cpp", "cs", "go", "h", "java", "js", "kt", "mjs", "php",
                           "py", "rb", "rs", "scala", "swift", "ts"})


def find_address(text: str) -> tuple[str | None, int | None]:
    """The HOST:PORT a message mentions, if any (for the fixes' {address})."""
    for pattern in _ADDRESS_PATTERNS:
        for m in pattern.finditer(text):
            host, port = m.group(1) or "0.0.0.0", int(m.group(2))
            if port > 65535 or host.rpartition(".")[2].lower() in _SOURCE_FILES:
                continue
            if (":" in host or re.fullmatch(r"[\d.]+", host)) and parse_ip(host) is None:
                continue  # 10:12:34:56 is a time, 999.1.1.1 no address
            return (host, port)
    return (None, None)


def find_operation(text: str, entry: ErrorEntry | None) -> str | None:
    """The socket call that failed, when the text shows it (listen EADDRINUSE, connectex)."""
    if entry is not None and entry.is_gai:
        return "resolve"
    for operation, pattern in _OPERATIONS:
        if pattern.search(text):
            return operation
    return None


def fill(template: str, host: str | None, port: int | None) -> str:
    """Put the text's host and port into a catalog template; placeholders stay readable."""
    shown_host = host if host else "HOST"
    shown_port = str(port) if port is not None else "PORT"
    address = f"[{shown_host}]:{shown_port}" if ":" in shown_host else f"{shown_host}:{shown_port}"
    try:
        return template.format(host=shown_host, port=shown_port, address=address)
    except (KeyError, IndexError, ValueError):
        return template


def lines_of(values: Iterable[str], host: str | None, port: int | None) -> list[str]:
    return [fill(v, host, port) for v in values]
