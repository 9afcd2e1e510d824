"""The chat room as a pure state machine: who is here, and what each line makes happen.

The room never touches a socket. The server tells it that a client connected, sent a line
or went away, and it answers with actions (send these bytes to this client, to everyone,
close that client). Clients are opaque handles: the server passes its connection objects,
tests pass strings. The server calls the room under one lock and performs the actions
before releasing it, which is what gives every client the same order of messages.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from netlab.chat import protocol as p


@dataclass(frozen=True)
class Send:
    to: Hashable
    data: bytes


@dataclass(frozen=True)
class Broadcast:
    """To every joined client, the sender included.

    A notice (joined, left, renamed) is presence news, not conversation: the server may
    hold it back a few milliseconds to send it along with other lines. Its order among
    the lines is kept.
    """

    data: bytes
    notice: bool = False


@dataclass(frozen=True)
class Close:
    """Close this client once what was sent to it has gone out."""

    who: Hashable
    reason: str


@dataclass(frozen=True)
class Joined:
    """A notice for the server's log: a client finished the handshake."""

    who: Hashable
    nick: str


@dataclass(frozen=True)
class Left:
    who: Hashable
    nick: str
    reason: str


Action = Send | Broadcast | Close | Joined | Left

_NICK_LINE = p.encode_line(p.NICK_PROMPT)


class Room:
    def __init__(self) -> None:
        self._nicks: dict[Hashable, str] = {}  # joined clients, in order of joining
        self._by_key: dict[str, Hashable] = {}  # casefolded nick -> client
        self._waiting: set[Hashable] = set()  # connected, no nickname yet

    # -- queries -------------------------------------------------------------------------
    def nick(self, who: Hashable) -> str | None:
        return self._nicks.get(who)

    def members(self) -> list[Hashable]:
        return list(self._nicks)

    def member_view(self) -> Iterable[Hashable]:
        """A live view for broadcasting without copying (do not change the room meanwhile)."""
        return self._nicks.keys()

    def nicks(self) -> list[str]:
        return list(self._nicks.values())

    def __len__(self) -> int:
        return len(self._nicks)

    # -- events --------------------------------------------------------------------------
    def connect(self, who: Hashable) -> list[Action]:
        self._waiting.add(who)
        return [Send(who, _NICK_LINE)]

    def receive(self, who: Hashable, line: bytes) -> list[Action]:
        """One complete line from a client (framing already done, line ending removed)."""
        text = p.clean_text(line)
        if not text.strip():
            return []  # empty lines are ignored, also during the handshake
        nick = self._nicks.get(who)
        if nick is None:
            if who not in self._waiting:
                return []  # a line racing its own disconnect
            return self._choose_nick(who, text)
        if text.startswith("/"):
            return self._command(who, nick, text)
        return [Broadcast(p.encode_line(p.message_line(nick, text)))]

    def too_long(self, who: Hashable, limit: int) -> list[Action]:
        return [Send(who, p.encode_line(p.error_line(f"line too long (max {limit} bytes)")))]

    def disconnect(self, who: Hashable, reason: str) -> list[Action]:
        self._waiting.discard(who)
        nick = self._nicks.pop(who, None)
        if nick is None:
            return []
        del self._by_key[p.nick_key(nick)]
        left = Broadcast(p.encode_line(p.left_line(nick, reason)), notice=True)
        return [Left(who, nick, reason), left]

    # -- the handshake -------------------------------------------------------------------
    def _choose_nick(self, who: Hashable, text: str) -> list[Action]:
        nick, problem = p.check_nick(text)
        key = p.nick_key(nick) if nick is not None else ""
        if nick is not None and key in self._by_key:
            nick, problem = None, f"nickname {nick} is taken, choose another"
        if nick is None:
            return [Send(who, p.encode_line(p.error_line(problem or "bad nickname"))),
                    Send(who, _NICK_LINE)]
        self._waiting.discard(who)
        self._nicks[who] = nick
        self._by_key[key] = who
        return [
            Joined(who, nick),
            Send(who, p.encode_line(p.welcome_line(nick, len(self._nicks)))),
            Broadcast(p.encode_line(p.joined_line(nick)), notice=True),
        ]

    # -- commands ------------------------------------------------------------------------
    def _command(self, who: Hashable, nick: str, text: str) -> list[Action]:
        name, _, rest = text[1:].partition(" ")
        name = name.lower()
        rest = rest.strip()
        if name == "me":
            if not rest:
                return self._error(who, "usage: /me ACTION")
            return [Broadcast(p.encode_line(p.action_line(nick, rest)))]
        if name == "msg":
            return self._private(who, nick, rest)
        if name == "who":
            return [Send(who, p.encode_line(p.who_line(self.nicks())))]
        if name == "nick":
            return self._rename(who, nick, rest)
        if name == "help":
            return [Send(who, p.encode_line(p.HELP_TEXT))]
        if name == "quit":
            left = self.disconnect(who, p.Reason.QUIT)
            # The leaver is no longer a member when the broadcast goes out: it gets a copy.
            return [*left, Send(who, p.encode_line(p.left_line(nick, p.Reason.QUIT))),
                    Close(who, p.Reason.QUIT)]
        return self._error(who, f"unknown command /{name}; /help lists the commands")

    def _private(self, who: Hashable, nick: str, rest: str) -> list[Action]:
        target_nick, _, message = rest.partition(" ")
        message = message.strip()
        if not target_nick or not message:
            return self._error(who, "usage: /msg NICK TEXT")
        target = self._by_key.get(p.nick_key(target_nick))
        if target is None:
            return self._error(who, f"no such nickname: {target_nick}")
        line = p.encode_line(p.private_line(nick, self._nicks[target], message))
        if target == who:
            return [Send(who, line)]
        return [Send(target, line), Send(who, line)]

    def _rename(self, who: Hashable, old: str, rest: str) -> list[Action]:
        if not rest:
            return self._error(who, "usage: /nick NEW")
        new, problem = p.check_nick(rest)
        if new is None:
            return self._error(who, problem or "bad nickname")
        owner = self._by_key.get(p.nick_key(new))
        if owner is not None and owner != who:
            return self._error(who, f"nickname {new} is taken, choose another")
        if new == old:
            return []
        del self._by_key[p.nick_key(old)]
        self._by_key[p.nick_key(new)] = who
        self._nicks[who] = new
        return [Broadcast(p.encode_line(p.renamed_line(old, new)), notice=True)]

    def _error(self, who: Hashable, text: str) -> list[Action]:
        return [Send(who, p.encode_line(p.error_line(text)))]
