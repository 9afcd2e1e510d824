"""The chat protocol's pure parts: line framing, text cleaning, nickname rules, line formats.

No sockets here: bytes go in, lines and events come out. The server, the client, the
exercise checks and the load generator all frame and clean text through this module, so
the rules live in one place and are tested without a network (lessons/00-protocol.md is
the same protocol written for students).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

DEFAULT_PORT = 55555
DEFAULT_HOST = "127.0.0.1"
MAX_LINE = 4096
MAX_NICK = 16
NICK_PROMPT = "NICK"
EOL = b"\r\n"  # server lines end in CRLF, as telnet and nc users expect


@dataclass(frozen=True)
class LineTooLong:
    """A line passed the limit; its bytes up to the next newline are being discarded."""

    limit: int


class LineFramer:
    """Splits a TCP byte stream into lines, across any split or coalesced recv() chunks.

    TCP delivers bytes, not messages: one send() may arrive in several recv()s and several
    sends in one. Lines end in LF (a CR before it is dropped). A line longer than max_line
    bytes is reported once as LineTooLong and discarded up to its newline: each chunk is
    scanned once and never re-joined, so a 10 MB line costs a scan, not a quadratic copy.
    """

    __slots__ = ("_discarding", "_parts", "_size", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._size = 0
        self._discarding = False

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished line (empty while a too-long line is being discarded)."""
        return b"".join(self._parts)

    def take_pending(self) -> bytes:
        """Hand over the unfinished line, e.g. a prompt sent without a newline."""
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return data

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        out: list[bytes | LineTooLong] = []
        limit = self.max_line + 1  # room for the CR of a CRLF
        start = 0
        end = len(data)
        while start < end:
            nl = data.find(b"\n", start)
            if nl < 0:
                if not self._discarding:
                    if self._size + (end - start) > limit:
                        self._start_discarding(out)
                    else:
                        self._parts.append(data[start:] if start else data)
                        self._size += end - start
                break
            if self._discarding:
                self._discarding = False
            else:
                line = data[start:nl]
                if self._parts:
                    self._parts.append(line)
                    line = b"".join(self._parts)
                    self._parts.clear()
                    self._size = 0
                if line.endswith(b"\r"):
                    line = line[:-1]
                if len(line) > self.max_line:
                    out.append(LineTooLong(self.max_line))
                else:
                    out.append(line)
            start = nl + 1
        return out

    def _start_discarding(self, out: list[bytes | LineTooLong]) -> None:
        self._parts.clear()
        self._size = 0
        self._discarding = True
        out.append(LineTooLong(self.max_line))


# Control characters would let one client move another's cursor, clear its screen or
# recolour its terminal (ESC [ 2 J). They are shown as visible escapes instead; C1
# controls too (0x9b is a one-byte CSI on some terminals), and the bidi overrides that
# can make a line display differently from what it says.
_ESCAPED = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x200E, 0x200F, *range(0x202A, 0x202F),
            *range(0x2066, 0x206A)]
_ESCAPE_TABLE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _ESCAPED}
_EDIT_KEYS = ("\b", "\x7f")


def clean_text(raw: bytes) -> str:
    """Bytes of one line to safe display text.

    Invalid UTF-8 is replaced (U+FFFD), never an error. Backspace and DEL edit the line, as
    a telnet user typing them means; every other control character becomes an escape.
    """
    text = raw.decode("utf-8", "replace")
    if text.isprintable():
        return text
    if "\b" in text or "\x7f" in text:
        kept: list[str] = []
        for ch in text:
            if ch in _EDIT_KEYS:
                if kept:
                    kept.pop()
            else:
                kept.append(ch)
        text = "".join(kept)
    return text.translate(_ESCAPE_TABLE)


_NICK_PUNCT = frozenset("-_.")
_DROP_NICK_PUNCT = str.maketrans("", "", "-_.")


def check_nick(raw: str) -> tuple[str | None, str | None]:
    """(nickname, None) when valid, else (None, reason). Uniqueness is the room's business.

    NFC first, so "é" typed as e + combining accent counts as one letter and compares equal
    to the precomposed form.
    """
    nick = unicodedata.normalize("NFC", raw.strip())
    if not nick:
        return None, "nickname must not be empty"
    if len(nick) > MAX_NICK:
        return None, f"nickname too long ({len(nick)} characters, max {MAX_NICK})"
    if nick.isascii() and nick.translate(_DROP_NICK_PUNCT).isalnum():
        return nick, None  # the common case, without a category lookup per character
    for ch in nick:
        if ch in _NICK_PUNCT:
            continue
        category = unicodedata.category(ch)
        if not (category.startswith("L") or category == "Nd"):
            shown = ch if ch.isprintable() and not ch.isspace() else repr(ch)
            return None, (
                f"nickname may only contain letters, digits and - _ . (not {shown})"
            )
    return nick, None


def nick_key(nick: str) -> str:
    """Nicknames are unique regardless of case: Alice and ALICE are the same person."""
    return unicodedata.normalize("NFC", nick).casefold()


def encode_line(text: str) -> bytes:
    return text.encode("utf-8", "replace") + EOL


# ---------------------------------------------------------------------------------------
# What the server says, in one place, so the lesson, the server and the client agree.

HELP_TEXT = (
    "*** commands: /me ACTION, /msg NICK TEXT, /who, /nick NEW, /help, /quit"
    " (anything else is a message to everyone)"
)


def welcome_line(nick: str, online: int) -> str:
    return f"*** Welcome, {nick}! {online} online; /help for commands"


def joined_line(nick: str) -> str:
    return f"*** {nick} joined"


def left_line(nick: str, reason: str) -> str:
    return f"*** {nick} left ({reason})"


def message_line(nick: str, text: str) -> str:
    return f"{nick}: {text}"


def action_line(nick: str, action: str) -> str:
    return f"* {nick} {action}"


def private_line(sender: str, recipient: str, text: str) -> str:
    return f"[pm] {sender} -> {recipient}: {text}"


def who_line(nicks: list[str]) -> str:
    return f"*** online ({len(nicks)}): {', '.join(nicks)}"


def renamed_line(old: str, new: str) -> str:
    return f"*** {old} is now {new}"


def error_line(text: str) -> str:
    return f"! {text}"


class Reason:
    """Why a client left, as shown in `*** <nick> left (<reason>)`."""

    QUIT = "quit"
    CLOSED = "closed"
    RESET = "reset"
    TIMEOUT = "timeout"
    TOO_SLOW = "too slow"
    SHUTDOWN = "server shutdown"


# ---------------------------------------------------------------------------------------
# The client's side of the stream.


@dataclass(frozen=True)
class NickPrompt:
    """The server asks for a nickname."""


class ClientReader:
    """Turns what a chat server sends into display lines and nickname prompts.

    Accepts `NICK` with or without a newline: a tutorial-style server sends a bare "NICK"
    and waits, so the prompt can only be recognised as a whole unfinished chunk.
    """

    def __init__(self, max_line: int = 65536) -> None:
        self._framer = LineFramer(max_line)

    def feed(self, data: bytes) -> list[str | NickPrompt]:
        out: list[str | NickPrompt] = []
        for item in self._framer.feed(data):
            if isinstance(item, LineTooLong):
                out.append(f"! (a line over {item.limit} bytes from the server was cut)")
            elif item == b"NICK":
                out.append(NickPrompt())
            else:
                out.append(clean_text(item))
        if self._framer.pending == b"NICK":
            self._framer.take_pending()
            out.append(NickPrompt())
        return out

    def flush(self) -> list[str]:
        """An unfinished line, shown after a pause: servers that send no newlines."""
        rest = self._framer.take_pending()
        return [clean_text(rest)] if rest else []
