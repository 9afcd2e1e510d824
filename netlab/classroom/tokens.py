"""Proof tokens: `base64url(nick|exercise|address|time)` + `.` + `base64url(HMAC-SHA256)`.

Pure. The class server signs what it saw (the nickname, the exercise, the peer address of
the connection, the time), so a token pasted by a classmate still names the student who
earned it, from the address they earned it at. HMAC-SHA256 (RFC 2104) with a secret that
never leaves the instructor's machine: anyone can read the claims, nobody can forge them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone


class BadToken(ValueError):
    """The text is not a token at all (wrong shape, not base64url, wrong fields)."""


@dataclass(frozen=True)
class Claims:
    nick: str
    exercise: str
    address: str
    time: int  # Unix seconds

    def when(self) -> str:
        return datetime.fromtimestamp(self.time, timezone.utc).astimezone().isoformat()

    def to_json(self) -> dict[str, object]:
        return {"nick": self.nick, "exercise": self.exercise, "address": self.address,
                "time": self.time, "issued": self.when()}


def b64url(data: bytes) -> str:
    # Unpadded base64url (RFC 4648 section 5): safe in URLs, file names and chat lines.
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise BadToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToken(f"not base64url ({exc})") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _sign(secret: bytes, payload: str) -> str:
    return b64url(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: bytes, claims: Claims) -> str:
    for field in (claims.nick, claims.exercise, claims.address):
        if "|" in field or not field:
            raise ValueError(f"a token field may not be empty or contain '|': {field!r}")
    raw = f"{claims.nick}|{claims.exercise}|{claims.address}|{int(claims.time)}"
    payload = b64url(raw.encode("utf-8"))
    return f"{payload}.{_sign(secret, payload)}"


def parse_token(token: str) -> Claims:
    """The claims, without checking the signature. Raises BadToken."""
    payload, dot, signature = token.strip().partition(".")
    if not dot or not payload or not signature:
        raise BadToken("a token is two base64url parts joined by '.'")
    unb64url(signature)
    try:
        fields = unb64url(payload).decode("utf-8").split("|")
    except UnicodeDecodeError:
        raise BadToken("the claims are not UTF-8 text") from None
    if len(fields) != 4 or not all(fields[:3]) or not fields[3].isdigit():
        raise BadToken("the claims are not nick|exercise|address|time")
    return Claims(fields[0], fields[1], fields[2], int(fields[3]))


def signature_ok(secret: bytes, token: str) -> bool:
    payload, _, signature = token.strip().partition(".")
    # compare_digest: comparing in constant time gives away nothing about the right bytes.
    return hmac.compare_digest(_sign(secret, payload), signature)
