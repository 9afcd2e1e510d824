"""The socket-error catalog: one data file, looked up by name, number, or exception.

Every command that meets a socket error (serve, chat, diagnose, explain, capture) explains
it from here, so the wording and the codes never disagree between commands. The data lives
in socket_errors.json next to this module; this file only loads and indexes it.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import json
import socket
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from netlab.errors import SocketProblem

SYSTEMS = ("linux", "macos", "windows")
SYSTEM_LABELS = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


@dataclass(frozen=True)
class OSCode:
    """How one system spells an error: its number, its own name and its message."""

    number: int
    message: str
    name: str | None = None  # the system's own symbol when it differs (WSAEADDRINUSE, EAI_NONAME)


@dataclass(frozen=True)
class ErrorEntry:
    name: str  # canonical POSIX-style name, e.g. EADDRNOTAVAIL
    title: str  # a few plain words
    python: str  # the Python exception class students see
    explanation: str
    codes: dict[str, OSCode]  # system -> code
    situations: dict[str, str] = field(default_factory=dict)  # operation -> sentence template
    causes: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    lesson: int | None = None
    aliases: tuple[str, ...] = ()  # other names: EWOULDBLOCK, Node's ENOTFOUND, Rust's AddrInUse
    phrases: tuple[str, ...] = ()  # lower-case English wording seen in many languages' errors
    exceptions: tuple[str, ...] = ()  # exception classes that mean this entry (any language)
    libuv_windows: int | None = None  # Node's errno on Windows (-4091); elsewhere -errno
    libuv: int | None = None  # Node's number for getaddrinfo errors, on every system
    related: bool = False  # a neighbour of the classroom errors, not one of them
    # Another reading of the same code for a kind of address (address_context): its
    # title, explanation, situations, causes and fixes replace the usual ones.
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def is_gai(self) -> bool:
        """A getaddrinfo() error: its numbers live in their own space (EAI_*), not errno's."""
        return self.name.startswith("EAI_")

    def code(self, system: str) -> OSCode | None:
        return self.codes.get(system)

    def codes_text(self) -> str:
        """'Errno 99 on Linux, 49 on macOS, WinError 10049 on Windows'."""
        parts = []
        for system in SYSTEMS:
            code = self.codes.get(system)
            if code is None:
                continue
            label = SYSTEM_LABELS[system]
            if system == "windows":
                parts.append(f"WinError {code.number} on {label}")
            else:
                parts.append(f"{code.number} on {label}")
        if not parts:
            return ""
        if not parts[0].startswith("WinError"):
            parts[0] = "Errno " + parts[0]
        return ", ".join(parts)

    def fix_text(self, host: str, port: int | None, count: int | None = 2) -> str:
        """The first `count` fixes (all with None), with {host}, {port}, {address} filled."""
        where = format_address(host, port)
        out = []
        for text in self.fixes[:count]:
            try:
                out.append(text.format(host=host, port=port, address=where))
            except (KeyError, IndexError, ValueError):
                out.append(text)
        return " ".join(out)

    def at(self, host: str | None) -> ErrorEntry:
        """This entry as it reads for a call on `host` (itself when nothing is special)."""
        context = self.contexts.get(address_context(host) or "")
        if not context:
            return self
        return replace(
            self,
            title=context.get("title", self.title),
            explanation=context.get("explanation", self.explanation),
            situations=dict(context.get("situations", self.situations)),
            causes=tuple(context.get("causes", self.causes)),
            fixes=tuple(context.get("fixes", self.fixes)),
        )

    def situation(self, operation: str | None, **fields: object) -> str:
        """The plain sentence for this error in this call, e.g. for a bind or a connect."""
        template = self.situations.get(operation or "") or self.title
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError):
            return self.title


def _entry_from_json(raw: dict[str, Any]) -> ErrorEntry:
    codes = {}
    for system in SYSTEMS:
        item = raw.get(system)
        if item:
            codes[system] = OSCode(int(item["number"]), item["message"], item.get("name"))
    return ErrorEntry(
        name=raw["name"],
        title=raw["title"],
        python=raw.get("python", "OSError"),
        explanation=raw["explanation"],
        codes=codes,
        situations=dict(raw.get("situations", {})),
        causes=tuple(raw.get("causes", ())),
        fixes=tuple(raw.get("fixes", ())),
        lesson=raw.get("lesson"),
        aliases=tuple(raw.get("aliases", ())),
        phrases=tuple(p.lower() for p in raw.get("phrases", ())),
        exceptions=tuple(raw.get("exceptions", ())),
        libuv_windows=raw.get("libuv_windows"),
        libuv=raw.get("libuv"),
        related=bool(raw.get("related", False)),
        contexts=dict(raw.get("contexts", {})),
    )


def address_context(host: str | None) -> str | None:
    """What kind of address makes an error read differently: EINVAL from a bind or
    connect on fe80::1 (a link-local address exists once per interface, and without its
    zone, fe80::1%eth0, the system cannot tell which one is meant); a refused connect to
    this machine, where advice about classmates has no place."""
    if not host or "%" in host:
        return None
    if host.lower() == "localhost":
        return "loopback"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.version == 6 and ip.is_link_local:
        return "ipv6_link_local_without_zone"
    return None


def entry_to_dict(entry: ErrorEntry) -> dict[str, Any]:
    """The entry as plain data, for --json output (the same fields as the data file)."""
    codes: dict[str, Any] = {}
    for system in SYSTEMS:
        code = entry.codes.get(system)
        codes[system] = (
            None
            if code is None
            else {"number": code.number, "name": code.name or entry.name, "message": code.message}
        )
    return {
        "name": entry.name,
        "title": entry.title,
        "python": entry.python,
        "codes": codes,
        "explanation": entry.explanation,
        "causes": list(entry.causes),
        "fixes": list(entry.fixes),
        "lesson": entry.lesson,
    }


class Catalog:
    def __init__(
        self,
        entries: list[ErrorEntry],
        other_numbers: dict[str, dict[int, tuple[str, str]]] | None = None,
    ) -> None:
        self.entries = entries
        # What a number means on a system where it is no socket error (61 is ENODATA on Linux).
        self.other_numbers = other_numbers or {}
        self._by_name: dict[str, ErrorEntry] = {}
        for entry in entries:
            self._by_name[entry.name.upper()] = entry
            for code in entry.codes.values():
                if code.name:
                    self._by_name.setdefault(code.name.upper(), entry)
            for alias in entry.aliases:
                self._by_name.setdefault(alias.upper(), entry)

    def names(self) -> list[str]:
        """Every name the catalog answers to (canonical, WSA*, EAI_*, aliases)."""
        return list(self._by_name)

    def by_libuv(self, number: int) -> list[tuple[str | None, ErrorEntry]]:
        """Node's negative numbers: (system, entry); system None when alike everywhere."""
        found: list[tuple[str | None, ErrorEntry]] = []
        for entry in self.entries:
            if entry.libuv == number:
                found.append((None, entry))
            elif entry.libuv_windows == number:
                found.append(("windows", entry))
        return found

    def other_meaning(self, number: int, system: str) -> tuple[str, str] | None:
        """(name, message) of a number that is not a socket error on `system`."""
        return self.other_numbers.get(system, {}).get(number)

    def get(self, name: str) -> ErrorEntry | None:
        """By canonical or system name: EADDRINUSE, WSAEADDRINUSE, EAI_NONAME."""
        return self._by_name.get(name.strip().upper())

    def by_number(self, number: int, system: str | None = None) -> list[tuple[str, ErrorEntry]]:
        """Every (system, entry) whose code on that system is `number`."""
        found = []
        for entry in self.entries:
            for sys_name, code in entry.codes.items():
                if code.number == number and (system is None or system == sys_name):
                    found.append((sys_name, entry))
        return found

    def for_exception(self, exc: BaseException, system: str | None = None,
                      host: str | None = None) -> ErrorEntry | None:
        """The entry for an exception raised on this machine (or on `system`), as it
        reads for a call on `host` (ErrorEntry.at)."""
        entry = self._for_exception(exc, system or current_system())
        return entry.at(host) if entry is not None else None

    def _for_exception(self, exc: BaseException, system: str) -> ErrorEntry | None:
        if isinstance(exc, socket.gaierror):
            return self._for_gaierror(exc, system)
        if isinstance(exc, TimeoutError) and getattr(exc, "errno", None) is None:
            # socket.timeout from settimeout(): no errno, but it is a connect timeout.
            return self.get("ETIMEDOUT")
        if not isinstance(exc, OSError):
            return None
        winerror = getattr(exc, "winerror", None)
        if winerror:
            hits = self.by_number(winerror, "windows")
            if hits:
                return hits[0][1]
        if exc.errno is None:
            return None
        if system == current_system():
            name = _errno.errorcode.get(exc.errno)
            if name and self.get(name):
                return self.get(name)
        hits = self.by_number(exc.errno, system)
        return hits[0][1] if hits else None

    def _for_gaierror(self, exc: socket.gaierror, system: str) -> ErrorEntry | None:
        number = exc.errno
        if system == current_system() and isinstance(number, int):
            for attr in dir(socket):
                if attr.startswith("EAI_") and getattr(socket, attr) == number:
                    entry = self.get(attr)
                    if entry:
                        return entry
        if isinstance(number, int):
            for _sys, entry in self.by_number(number, system):
                if entry.name.startswith("EAI_"):
                    return entry
        return self.get("EAI_NONAME")


def current_system() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    text = resources.files("netlab.diagnose").joinpath("socket_errors.json").read_text("utf-8")
    data = json.loads(text)
    other = {
        system: {int(num): (pair[0], pair[1]) for num, pair in table.items()}
        for system, table in data.get("other_numbers", {}).items()
    }
    return Catalog([_entry_from_json(item) for item in data["errors"]], other)


def format_address(host: str, port: int | None) -> str:
    """host:port, with IPv6 literals in brackets as URLs and ss(8) write them."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def socket_problem(
    exc: BaseException, operation: str, host: str, port: int | None = None
) -> SocketProblem:
    """Turn a failed socket call into one clear message with the fix, from the catalog.

    The call matters as much as the code: 10048 from connect() means the client ran out of
    ephemeral ports, from bind() that a server already holds the port.
    """
    where = format_address(host, port)
    entry = load_catalog().for_exception(exc, host=host)
    if entry is None:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return SocketProblem(f"cannot {operation} {where}: {detail}", operation=operation)
    sentence = entry.situation(operation, host=host, port=port, address=where)
    codes = entry.codes_text()
    message = f"cannot {operation} {where}: {sentence} ({entry.name}; {codes})"
    hint = " ".join(entry.fixes[:2]) if entry.fixes else None
    if hint and "{" in hint:
        hint = hint.format(host=host, port=port, address=where)
    return SocketProblem(message, hint, code=entry.name, operation=operation)
