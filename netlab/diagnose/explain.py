"""Turn whatever a student pastes into the catalog entries it most likely means. Pure.

Input is a number (10049, 98, -2), a name (EADDRINUSE, WSAECONNREFUSED), a message, or a
whole traceback from Python, Node, Java, Go, Rust or .NET. Evidence is weighed in this order:

1. error names in the text (EADDRINUSE, WSAECONNREFUSED, EAI_AGAIN): they mean one thing;
2. error numbers in a known context (`[WinError 10049]`, `[Errno 98]`, `errno: -4078`,
   `(os error 49)`): Windows translates its messages, so the number decides (see
   shared/notes/socket-errors.md); but 48, 49, 61, 111 ... mean different things on
   different systems, and the rest of the text (WinError, the wording, a path) picks one;
3. the wording (English system messages and the phrases other runtimes print);
4. exception classes (ConnectionRefusedError, java.net.BindException).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from netlab.diagnose.catalog import SYSTEM_LABELS, SYSTEMS, Catalog, ErrorEntry, load_catalog
from netlab.diagnose.textclues import find_address, find_operation

MAX_TEXT = 20_000  # a pasted log can be long; the error is near the end

# Python on Windows sets errno = winerror - 10000 for these six (CPython's PC/errmap.h).
_WINDOWS_SHIFTED = {4, 9, 13, 14, 22, 24}

# (pattern, systems the number belongs to or None for any, label, kind)
# kind: "py" Python errno (negative = getaddrinfo), "node" Node errno, "any" plain errno.
_NUMBER_PATTERNS: list[tuple[re.Pattern[str], frozenset[str] | None, str, str]] = [
    (re.compile(r"\bWinError\s*(-?\d+)", re.I), frozenset({"windows"}), "WinError {n}", "any"),
    (re.compile(r"\[\s*Errno\s+(-?\d+)\s*\]", re.I), None, "Errno {n}", "py"),
    (
        re.compile(r"\b\w*(?:Error|error|Exception)\s*:?\s*\(\s*(-?\d+)\s*,\s*['\"]"),
        None,
        "Errno {n}",
        "py",
    ),  # ConnectionResetError(10054, '...'), socket.error: (111, '...')
    (re.compile(r"\berrno\s*[:=]\s*['\"]?(-?\d+)", re.I), None, "errno {n}", "node"),
    (re.compile(r"\(os error (-?\d+)\)", re.I), None, "os error {n}", "any"),
    (re.compile(r"\bOs\s*\{\s*code:\s*(-?\d+)"), None, "os error {n}", "any"),
    (re.compile(r"SocketException\s*\((\d+)\)"), None, "SocketException ({n})", "any"),
    (re.compile(r"\bErrno\s*[:=#]?\s*(-?\d+)", re.I), None, "Errno {n}", "py"),
    # A bare Windows Sockets code: '(10061)', 'socket error # 10061', 'error 10061'.
    (
        re.compile(r"(?:\(|\berror\s*#?\s*|\bcode\s*[:=]?\s*)(1[01]\d{3})\b", re.I),
        frozenset({"windows"}),
        "{n}",
        "any",
    ),
]
_BARE_NUMBER = re.compile(r"^\s*\(?\s*(-?\d{1,5})\s*\)?\s*$")
_NAME_TOKEN = re.compile(r"\b(WSA[A-Z_]+|EAI_[A-Z]+|E[A-Z0-9]{2,}|WSAHOST_NOT_FOUND)\b")
_RUST_KIND = re.compile(r"\bkind:\s*([A-Za-z]+)")
_GAI_WORDS = (
    "gaierror",
    "getaddrinfo",
    "nodename",
    "servname",
    "name resolution",
    "name or service",
    "eai_",
    "unknownhost",
    "enotfound",
    "no such host",
)

_SYSTEM_HINTS: dict[str, tuple[str, ...]] = {
    "windows": (
        "winerror",
        "wsae",
        "connectex:",  # Go's dial error; bare, it is the start of Java's ConnectException
        "jvm_bind",
        "c:\\",
        "\\users\\",
        "windows",
        "system.net.sockets",
        "wsa error",
    ),
    "macos": ("/users/", "darwin", "macos", "mac os", "/opt/homebrew", "/library/frameworks"),
    "linux": ("/home/", "linux", "ubuntu", "debian", "fedora", "/usr/lib/python"),
}
# Java on Windows appends the failed call to the message: "Connection refused: connect".
_JAVA_WINDOWS = re.compile(
    r"(?:in use|refused|timed out|requested address): (?:bind|connect)\b", re.I
)


@dataclass(frozen=True)
class NumberMeaning:
    """What one number means on one system."""

    number: int
    label: str  # as it appeared: "WinError 10049", "Errno 48"
    system: str
    name: str | None  # EADDRINUSE, or ELNRNG for a non-socket error, None for nothing
    message: str
    socket_error: bool
    picked: bool = False  # the context chose this system


@dataclass(frozen=True)
class Match:
    entry: ErrorEntry
    certainty: str  # "certain" or "likely" (alternatives are "possible")
    reason: str
    systems: tuple[str, ...] = ()  # where the code came from, when the text tells
    score: int = 0


@dataclass(frozen=True)
class Explanation:
    text: str
    matches: tuple[Match, ...] = ()
    meanings: tuple[NumberMeaning, ...] = ()
    operation: str | None = None
    host: str | None = None
    port: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def recognised(self) -> bool:
        return bool(self.matches)

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None


@dataclass
class _Evidence:
    kind: str  # name, number, wording, exception, gai
    weight: int
    detail: str
    systems: frozenset[str] = frozenset()
    decisive: bool = False


@dataclass
class _Candidate:
    entry: ErrorEntry
    evidence: list[_Evidence] = field(default_factory=list)

    def best(self, kind: str) -> _Evidence | None:
        found = [e for e in self.evidence if e.kind == kind]
        return max(found, key=lambda e: e.weight) if found else None

    @property
    def score(self) -> int:
        # The strongest evidence of each kind counts once: three phrases are one wording.
        best: dict[str, int] = {}
        for e in self.evidence:
            best[e.kind] = max(best.get(e.kind, 0), e.weight)
        return sum(best.values())


_Adder = Callable[[ErrorEntry, _Evidence], None]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower())


def _strip_message(message: str) -> str:
    return _norm(message).strip().rstrip(".")


def explain_text(text: str, catalog: Catalog | None = None) -> Explanation:
    """Classify pasted text. The first match leads; 'likely' ones carry their reason."""
    catalog = catalog or load_catalog()
    text = text[-MAX_TEXT:]
    low = _norm(text)
    gai = any(w in low for w in _GAI_WORDS)
    cands: dict[str, _Candidate] = {}

    def add(entry: ErrorEntry, ev: _Evidence) -> None:
        cands.setdefault(entry.name, _Candidate(entry)).evidence.append(ev)

    # Which systems the text itself points at: paths, WinError, each system's own wording.
    hints = {s for s, words in _SYSTEM_HINTS.items() if any(w in low for w in words)}
    if _JAVA_WINDOWS.search(text):
        hints.add("windows")
    wording_systems = _wording(text, low, catalog, add)
    # A message that only one system prints names that system ("Can't assign" is macOS).
    for systems in wording_systems.values():
        if len(systems) == 1:
            hints |= systems

    _names(text, catalog, add)
    meanings = _numbers(text, low, gai, hints, catalog, add)
    _exceptions(text, gai, catalog, add)

    notes: list[str] = []
    # '[Errno 61] No data available': the wording names the non-socket meaning; say so.
    for meaning in meanings:
        if not meaning.socket_error and meaning.name and _strip_message(meaning.message) in low:
            notes.append(
                f"{meaning.label} on {SYSTEM_LABELS[meaning.system]} is {meaning.name} "
                f"({meaning.message}), not a socket error"
            )
            for cand in cands.values():
                cand.evidence = [e for e in cand.evidence if e.kind != "number"]
    ranked = sorted(
        (c for c in cands.values() if c.score > 0),
        key=lambda c: (-c.score, c.entry.related, c.entry.name),
    )
    host, port = find_address(text)
    operation = find_operation(text, ranked[0].entry if ranked else None)
    # (read for the address in the text: EINVAL on fe80::1 is a missing %zone)
    matches = tuple(replace(m, entry=m.entry.at(host)) for m in _rank(ranked, meanings, hints))
    return Explanation(
        text=text,
        matches=matches,
        meanings=tuple(meanings),
        operation=operation,
        host=host,
        port=port,
        notes=tuple(notes),
    )


def _wording(text: str, low: str, catalog: Catalog, add: _Adder) -> dict[str, frozenset[str]]:
    """English wording: a system's own message (strong) or a phrase other runtimes print."""
    matched: dict[str, frozenset[str]] = {}
    for entry in catalog.entries:
        systems = frozenset(
            s for s, code in entry.codes.items() if _strip_message(code.message) in low
        )
        best: tuple[int, str] | None = None
        if systems:
            message = max((entry.codes[s].message for s in systems), key=len)
            best = (60 + min(len(message), 60) // 6, message)
        for phrase in entry.phrases:
            if phrase in low:
                weight = 40 + min(len(phrase), 40) // 4
                if best is None or weight > best[0]:
                    best = (weight, phrase)
        if best is not None:
            add(
                entry,
                _Evidence("wording", best[0], f"the wording '{best[1].rstrip('.')}'", systems),
            )
            if systems:
                matched[entry.name] = systems
    return matched


def _names(text: str, catalog: Catalog, add: _Adder) -> None:
    tokens = set(_NAME_TOKEN.findall(text)) | set(_RUST_KIND.findall(text))
    stripped = text.strip()
    if re.fullmatch(r"[A-Za-z_]+", stripped):  # a lone name, in any case: eaddrinuse
        tokens.add(stripped)
    for token in tokens:
        entry = catalog.get(token)
        if entry is not None:
            add(entry, _Evidence("name", 100, f"the name {token.upper()}", decisive=True))


def _numbers(
    text: str, low: str, gai: bool, hints: set[str], catalog: Catalog, add: _Adder
) -> list[NumberMeaning]:
    found: list[tuple[int, frozenset[str] | None, str, str]] = []
    seen: set[int] = set()
    bare = _BARE_NUMBER.match(text)
    if bare:
        found.append((int(bare.group(1)), None, "{n}", "bare"))
    for pattern, systems, label, kind in _NUMBER_PATTERNS:
        for m in pattern.finditer(text):
            found.append((int(m.group(1)), systems, label, kind))
    meanings: list[NumberMeaning] = []
    for number, systems, label_fmt, kind in found:
        if number in seen:
            continue
        seen.add(number)
        label = label_fmt.format(n=number)
        options = _number_options(number, systems, kind, gai, catalog)
        if not options:
            continue
        socket_ones = [o for o in options if o.socket_error]
        if not socket_ones:
            meanings.extend(
                NumberMeaning(o.number, label, o.system, o.name, o.message, False)
                for o in options
                if o.name
            )
            continue
        # Narrow to the systems the text points at, when that keeps a socket meaning.
        pool = socket_ones
        narrowed = [o for o in socket_ones if o.system in hints]
        if narrowed:
            pool = narrowed
        entries = {o.name for o in pool}
        every_system_agrees = (
            all(o.socket_error for o in options) and len({o.name for o in options}) == 1
        )
        for o in options:
            meanings.append(
                NumberMeaning(
                    o.number,
                    label,
                    o.system,
                    o.name,
                    o.message,
                    o.socket_error,
                    picked=o in pool and len(pool) < len(options),
                )
            )
        for name in entries:
            entry = catalog.get(name)  # type: ignore[arg-type]
            if entry is None:
                continue
            systems_of = frozenset(o.system for o in pool if o.name == name)
            decisive = len(entries) == 1 and (
                every_system_agrees or bool(narrowed) or systems is not None
            )
            where = (
                "every system"
                if len(systems_of) == len(SYSTEMS)
                else " and ".join(SYSTEM_LABELS[s] for s in SYSTEMS if s in systems_of)
            )
            add(
                entry,
                _Evidence(
                    "number",
                    100 if len(entries) == 1 else 70,
                    f"{label} is {name} on {where}",
                    systems_of,
                    decisive,
                ),
            )
    return meanings


@dataclass(frozen=True)
class _Option:
    number: int
    system: str
    name: str | None
    message: str
    socket_error: bool


def _number_options(
    number: int, systems: frozenset[str] | None, kind: str, gai: bool, catalog: Catalog
) -> list[_Option]:
    """Every system's reading of a number, socket error or not."""
    out: list[_Option] = []
    if number <= -3000 or (kind == "node" and number < 0):
        # Node/libuv: -4078 on Windows, -3008 for getaddrinfo everywhere, else minus errno.
        for system, entry in catalog.by_libuv(number):
            for s in [system] if system else list(SYSTEMS):
                out.append(_Option(number, s, entry.name, entry.title, True))
        if out or number <= -3000:
            return out
        return [
            _Option(number, o.system, o.name, o.message, o.socket_error)
            for o in _number_options(-number, frozenset({"linux", "macos"}), "any", False, catalog)
        ]
    if number < 0:
        space_gai: bool | None = True  # Python's negative errno is a getaddrinfo error (glibc)
    elif kind == "bare" and not gai:
        space_gai = None  # a lone number: errno first, getaddrinfo codes if nothing else
    else:
        space_gai = gai
    candidates = [s for s in SYSTEMS if systems is None or s in systems]
    if number >= 10000:
        candidates = [s for s in candidates if s == "windows"]
    for system in candidates:
        hits = _hits(number, system, space_gai, kind, catalog)
        if hits:
            entry = hits[0]
            code = entry.codes[system]
            message = code.message
            if system == "windows" and code.number != number:
                message = f"{message} (WinError {code.number}; Python's errno is {number})"
            out.append(_Option(number, system, entry.name, message, True))
            continue
        other = catalog.other_meaning(number, system)
        if other is not None:
            out.append(_Option(number, system, other[0], other[1], False))
        elif number >= 0 and (system != "windows" or number >= 10000 or systems is not None):
            out.append(
                _Option(number, system, None, "no socket error has this number there", False)
            )
    return out


def _hits(
    number: int, system: str, space_gai: bool | None, kind: str, catalog: Catalog
) -> list[ErrorEntry]:
    def pick(gai_space: bool) -> list[ErrorEntry]:
        hits = [e for s, e in catalog.by_number(number, system) if e.is_gai == gai_space]
        if not hits and system == "windows" and number in _WINDOWS_SHIFTED and not gai_space:
            hits = [e for s, e in catalog.by_number(number + 10000, system) if not e.is_gai]
        hits.sort(key=lambda e: e.related)
        return hits

    if space_gai is None:
        return pick(False) or pick(True)
    return pick(space_gai)


def _exceptions(text: str, gai: bool, catalog: Catalog, add: _Adder) -> None:
    table: dict[str, list[ErrorEntry]] = {}
    for entry in catalog.entries:
        names = set(entry.exceptions)
        if entry.python not in ("OSError", "socket.gaierror") and not entry.related:
            names.add(entry.python)
        for name in sorted(names):
            table.setdefault(name, []).append(entry)
    for name, entries in table.items():
        if re.search(rf"(?<![\w.]){re.escape(name)}\b", text) or (
            "." in name and name.rsplit(".", 1)[1] in text and name.startswith("java.")
        ):
            for entry in entries:
                add(entry, _Evidence("exception", 30 // len(entries), f"the exception {name}"))
    if gai:
        # 'getaddrinfo failed' with nothing else: a name that does not resolve, most often.
        for name, weight in (("EAI_NONAME", 25), ("EAI_AGAIN", 15), ("EAI_NODATA", 10)):
            gai_entry = catalog.get(name)
            if gai_entry is not None:
                add(gai_entry, _Evidence("gai", weight, "a getaddrinfo (name lookup) error"))


def _rank(
    ranked: list[_Candidate], meanings: list[NumberMeaning], hints: set[str]
) -> tuple[Match, ...]:
    if not ranked:
        return ()
    lead = ranked[0]
    decisive = [c for c in ranked if any(e.decisive for e in c.evidence)]
    number = lead.best("number")
    wording = lead.best("wording")
    name = lead.best("name")
    # A number that means this entry on some systems only, confirmed by the wording or the
    # exception class, is as good as a decisive one.
    confirmed = number is not None and (wording is not None or lead.best("exception") is not None)
    certain = (lead in decisive or confirmed) and all(
        c is lead or not any(e.decisive for e in c.evidence) for c in ranked
    )
    systems = _systems(lead, hints)
    if certain:
        why = name or number or wording
        reason = why.detail if why else ""
        if number is not None and wording is not None and name is None:
            reason = f"{number.detail}, and {wording.detail} agrees"
        return (Match(lead.entry, "certain", reason, systems, lead.score),)
    reason = _likely_reason(lead, ranked, meanings)
    out = [Match(lead.entry, "likely", reason, systems, lead.score)]
    for cand in ranked[1:3]:
        best = max(cand.evidence, key=lambda e: e.weight)
        out.append(Match(cand.entry, "possible", best.detail, _systems(cand, hints), cand.score))
    return tuple(out)


def _systems(cand: _Candidate, hints: set[str]) -> tuple[str, ...]:
    """Where the error came from, when the text tells: its number, else paths and wording
    only one system prints (Node and Java print the same English everywhere)."""
    number = cand.best("number")
    systems: set[str] = set(number.systems) if number else set()
    name = cand.best("name")
    if not systems and name is not None and "WSA" in name.detail:
        systems = {"windows"}
    if not systems:
        systems = set(hints)
    if len(systems) == len(SYSTEMS):
        return ()
    return tuple(s for s in SYSTEMS if s in systems)


def _likely_reason(
    lead: _Candidate, ranked: list[_Candidate], meanings: list[NumberMeaning]
) -> str:
    rivals = [c for c in ranked[1:] if any(e.decisive for e in c.evidence)]
    if rivals:
        return (
            f"the text holds more than one error ({lead.entry.name}, "
            f"{', '.join(c.entry.name for c in rivals[:2])}); this one has the most evidence"
        )
    number = lead.best("number")
    if number is not None:
        others = sorted(
            {m.system for m in meanings if m.label in number.detail and not m.socket_error}
        )
        where = " and ".join(SYSTEM_LABELS[s] for s in others)
        tail = f"; on {where} it is no socket error" if where else ""
        return f"{number.detail}{tail}, and nothing else in the text says which system"
    if lead.best("name") is not None:
        return "the text names several errors; this one has the most evidence"
    wording = lead.best("wording")
    if wording is not None:
        return f"{wording.detail} matched, no error number"
    exc = lead.best("exception")
    if exc is not None:
        return f"{exc.detail} matched, not the message"
    best = max(lead.evidence, key=lambda e: e.weight)
    return f"only {best.detail} in the text, no error number"
