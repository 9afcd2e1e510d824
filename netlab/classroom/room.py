"""The class room: the chat room plus a class password, proof requests and drill answers.

Pure, like the room it extends: it returns actions. The extra actions (Said, ProofRequest,
DrillSubmit, PasswordRefused) are for the class server, which logs them and does the
network part of a proof (the chat server ignores action types it does not know).
"""

from __future__ import annotations

import hmac
from collections.abc import Hashable
from dataclasses import dataclass

from netlab.chat import protocol as p
from netlab.chat.room import Action, Close, Room, Send

PASS_PROMPT = "PASS"
WRONG_PASSWORD = "wrong password"

# Exercises the class server can prove, by lesson: each needs a second machine.
PROOFS: dict[str, str] = {
    "1": "bind your server so classmates can reach it: the class server connects to it",
    "9": "reach the class server across the LAN, from your own machine",
}

CLASS_HELP = (
    p.HELP_TEXT.replace(", /nick NEW", "")
    + "; class: /prove 9, /prove 1 PORT, /drill ANSWER"
)


@dataclass(frozen=True)
class Said:
    """A member sent a chat message (counted for the roster and the log)."""

    who: Hashable
    nick: str


@dataclass(frozen=True)
class ProofRequest:
    who: Hashable
    nick: str
    exercise: str
    port: int | None


@dataclass(frozen=True)
class DrillSubmit:
    who: Hashable
    nick: str
    answer: str


@dataclass(frozen=True)
class PasswordRefused:
    who: Hashable
    nick: str


def token_line(exercise: str, token: str) -> str:
    return f"*** TOKEN {exercise} {token}"


def drill_line(round_no: int, correct: bool) -> str:
    return f"*** DRILL {round_no} {'correct' if correct else 'wrong'}"


_PASS_LINE = p.encode_line(PASS_PROMPT)


class ClassRoom(Room):
    def __init__(self, password: str | None = None) -> None:
        super().__init__()
        self.password = password
        self._pass_pending: dict[Hashable, str] = {}  # valid nickname given, PASS asked

    def receive(self, who: Hashable, line: bytes) -> list[Action]:
        pending = self._pass_pending.get(who)
        if pending is not None:
            text = p.clean_text(line).strip()
            return self._check_password(who, pending, text) if text else []
        nick = self.nick(who)
        actions = super().receive(who, line)
        if nick is not None and self.nick(who) == nick and _is_chat(p.clean_text(line)):
            actions.append(Said(who, nick))  # type: ignore[arg-type]
        return actions

    def disconnect(self, who: Hashable, reason: str) -> list[Action]:
        self._pass_pending.pop(who, None)
        return super().disconnect(who, reason)

    # -- the password step, between a valid nickname and joining ---------------------------
    def _choose_nick(self, who: Hashable, text: str) -> list[Action]:
        if self.password is None:
            return super()._choose_nick(who, text)
        nick, _ = p.check_nick(text)
        if nick is None or p.nick_key(nick) in self._by_key:
            return super()._choose_nick(who, text)  # the usual "! reason" and NICK again
        self._pass_pending[who] = nick
        return [Send(who, _PASS_LINE)]

    def _check_password(self, who: Hashable, nick: str, given: str) -> list[Action]:
        del self._pass_pending[who]
        assert self.password is not None
        # Constant-time comparison: response timing must not reveal how much was right.
        if hmac.compare_digest(given.encode("utf-8"), self.password.encode("utf-8")):
            return super()._choose_nick(who, nick)
        self._waiting.discard(who)
        return [Send(who, p.encode_line(p.error_line(WRONG_PASSWORD))),
                PasswordRefused(who, nick),  # type: ignore[list-item]
                Close(who, WRONG_PASSWORD)]

    # -- class commands -------------------------------------------------------------------
    def _command(self, who: Hashable, nick: str, text: str) -> list[Action]:
        name, _, rest = text[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name == "prove":
            return self._prove(who, nick, rest)
        if name == "drill":
            if not rest:
                return self._error(who, "usage: /drill ANSWER (the fault you found)")
            return [DrillSubmit(who, nick, rest)]  # type: ignore[list-item]
        if name == "nick":
            # One name per student keeps the log gradable: reconnect to change it.
            return self._error(who, "/nick is off on the class server; reconnect to change it")
        if name == "help":
            return [Send(who, p.encode_line(CLASS_HELP))]
        return super()._command(who, nick, text)

    def _prove(self, who: Hashable, nick: str, rest: str) -> list[Action]:
        exercise, _, arg = rest.partition(" ")
        if exercise not in PROOFS:
            known = ", ".join(f"/prove {e}" + (" PORT" if e == "1" else "") for e in PROOFS)
            return self._error(who, f"no such exercise {exercise!r}; try {known}")
        port: int | None = None
        if exercise == "1":
            arg = arg.strip()
            if not arg.isdigit() or not 1 <= int(arg) <= 65535:
                return self._error(who, "usage: /prove 1 PORT (the port your server listens on)")
            port = int(arg)
        return [ProofRequest(who, nick, exercise, port)]  # type: ignore[list-item]


def _is_chat(text: str) -> bool:
    """A line others will read as a message: plain text, /me or /msg."""
    if not text.strip():
        return False
    if not text.startswith("/"):
        return True
    return text[1:].partition(" ")[0].lower() in ("me", "msg")
