"""The words: what a payload means in the chat, and how to preview bytes for a person.

Pure functions of bytes and a little state, kept apart from the TCP bookkeeping in
analysis.py so the wording can change without touching the sequence-number logic.
"""

from __future__ import annotations

import re

_BROADCAST = re.compile(r"^[^\s:]{1,32}: ")


def preview(payload: bytes, limit: int = 40) -> str:
    """A short, safe rendering of payload bytes: quoted text, or hex for binary data.

    \\r and \\n stay visible: students should see that chat lines end in CRLF.
    """
    if not payload:
        return ""
    text = payload.decode("utf-8", "replace")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    if printable < 0.8 * len(text):
        shown = payload[: limit // 2].hex(" ")
        return shown + (" ..." if len(payload) > limit // 2 else "")
    escaped = (
        text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    )
    escaped = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in escaped)
    if len(escaped) > limit:
        escaped = escaped[: limit - 3] + "..."
    return f'"{escaped}"'


def lines_of(payload: bytes) -> list[str]:
    text = payload.decode("utf-8", "replace")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip("\r")]


def looks_like_chat_prompt(payload: bytes) -> bool:
    """The chat server opens every connection with NICK\\r\\n (lessons/00-protocol.md)."""
    return payload.rstrip(b"\r\n") == b"NICK"


def describe_server_line(line: str) -> str:
    if line == "NICK":
        return "server asks for a nickname"
    if line.startswith("*** Welcome,"):
        return "server welcomes the client and says who is online"
    if line.startswith("*** ") and line.endswith(" joined"):
        return "server announces that someone joined"
    if line.startswith("*** ") and " left (" in line:
        return "server announces that someone left"
    if line.startswith("*** "):
        return "server notice"
    if line.startswith("[pm] "):
        return "server delivers a private message (to sender and recipient only)"
    if line.startswith("! "):
        return "server reports an error to this client"
    if line.startswith("* "):
        return "server broadcasts an action (/me)"
    if _BROADCAST.match(line):
        return "server broadcasts 'nick: message' to everyone"
    return "server sends a line"


def describe_client_line(line: str, expecting_nick: bool) -> str:
    if expecting_nick:
        return "client answers with its nickname"
    if line.startswith("/msg "):
        return "client sends a private message (/msg NICK TEXT)"
    if line.strip() == "/quit":
        return "client asks to leave (/quit)"
    if line.startswith("/"):
        return f"client sends the command {line.split()[0]}"
    return "client sends a chat message"


def describe_data(payload: bytes, length: int, from_client: bool, chat: bool,
                  expecting_nick: bool) -> str:
    """One line saying what a data segment carries."""
    side = "client" if from_client else "server"
    lines = lines_of(payload)
    if not chat or not lines:
        return f"{side} sends {length} byte{'s' if length != 1 else ''} of data"
    if from_client:
        what = describe_client_line(lines[0], expecting_nick)
    else:
        what = describe_server_line(lines[0])
    if len(lines) > 1:
        # Several send()s coalesced into one segment: TCP is a byte stream, not messages.
        what += f" (+{len(lines) - 1} more line{'s' if len(lines) > 2 else ''} in one segment)"
    return what
