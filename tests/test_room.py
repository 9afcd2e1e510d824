"""The room as a specification: what each line from a client makes happen (no sockets)."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from netlab.chat.room import Action, Broadcast, Close, Joined, Left, Room, Send


class Pair:
    """Runs the room's actions the way the server does and records what each client got."""

    def __init__(self) -> None:
        self.room = Room()
        self.got: dict[Hashable, list[str]] = {}
        self.closed: dict[Hashable, str] = {}

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                for member in self.room.members():
                    self.got.setdefault(member, []).append(action.data.decode())
            elif isinstance(action, Send):
                self.got.setdefault(action.to, []).append(action.data.decode())
            elif isinstance(action, Close):
                self.closed[action.who] = action.reason

    def connect(self, who: str) -> None:
        self.run(self.room.connect(who))

    def say(self, who: str, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.run(self.room.receive(who, data))

    def join(self, who: str, nick: str | None = None) -> None:
        self.connect(who)
        self.say(who, nick or who)

    def take(self, who: str) -> list[str]:
        lines = [line.removesuffix("\r\n") for line in self.got.get(who, [])]
        self.got[who] = []
        return lines


@pytest.fixture
def chat() -> Pair:
    return Pair()


def test_a_newcomer_is_asked_for_a_nickname(chat: Pair) -> None:
    chat.connect("a")
    assert chat.take("a") == ["NICK"]


def test_joining_welcomes_the_newcomer_and_tells_everyone(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.join("bob")
    assert chat.take("bob") == ["NICK", "*** Welcome, bob! 2 online; /help for commands",
                                "*** bob joined"]
    assert chat.take("alice") == ["*** bob joined"]


def test_a_message_goes_to_everyone_including_the_sender(chat: Pair) -> None:
    chat.join("alice")
    chat.join("bob")
    chat.take("alice"), chat.take("bob")
    chat.say("alice", "hi all")
    assert chat.take("alice") == ["alice: hi all"]
    assert chat.take("bob") == ["alice: hi all"]


def test_no_message_before_joining(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.connect("x")
    chat.say("x", "bad nick!")
    assert chat.take("alice") == []
    assert chat.take("x")[-2:][1] == "NICK"


@pytest.mark.parametrize(
    ("nick", "reason"),
    [("", None), ("a" * 17, "too long"), ("no spaces", "letters"), ("ALICE", "taken")],
)
def test_a_refused_nickname_gets_a_reason_and_nick_again(chat: Pair, nick: str,
                                                         reason: str | None) -> None:
    chat.join("alice")
    chat.connect("x")
    chat.take("x")
    chat.say("x", nick)
    got = chat.take("x")
    if reason is None:  # an empty line is ignored, also in the handshake
        assert got == []
    else:
        assert got[0].startswith("! ") and reason in got[0]
        assert got[1] == "NICK"


def test_me_action(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.say("alice", "/me waves")
    assert chat.take("alice") == ["* alice waves"]


def test_private_message_reaches_both_ends_only(chat: Pair) -> None:
    for who in ("alice", "bob", "carol"):
        chat.join(who)
    for who in ("alice", "bob", "carol"):
        chat.take(who)
    chat.say("alice", "/msg BOB psst")
    assert chat.take("bob") == ["[pm] alice -> bob: psst"]
    assert chat.take("alice") == ["[pm] alice -> bob: psst"]
    assert chat.take("carol") == []


def test_private_message_to_nobody(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.say("alice", "/msg ghost hello")
    assert chat.take("alice") == ["! no such nickname: ghost"]


def test_who_lists_in_joining_order(chat: Pair) -> None:
    chat.join("bob")
    chat.join("alice")
    chat.take("alice")
    chat.say("alice", "/who")
    assert chat.take("alice") == ["*** online (2): bob, alice"]


def test_nick_change(chat: Pair) -> None:
    chat.join("alice")
    chat.join("bob")
    chat.take("alice"), chat.take("bob")
    chat.say("alice", "/nick Alicia")
    assert chat.take("bob") == ["*** alice is now Alicia"]
    assert chat.take("alice") == ["*** alice is now Alicia"]
    chat.say("bob", "/nick alicia")
    assert chat.take("bob") == ["! nickname alicia is taken, choose another"]
    chat.say("bob", "/msg alicia hi")
    assert chat.take("alice") == ["[pm] bob -> Alicia: hi"]


def test_help_and_unknown_commands(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.say("alice", "/help")
    assert chat.take("alice")[0].startswith("*** commands: /me")
    chat.say("alice", "/frobnicate")
    assert chat.take("alice") == ["! unknown command /frobnicate; /help lists the commands"]


def test_quit_tells_everyone_and_closes(chat: Pair) -> None:
    chat.join("alice")
    chat.join("bob")
    chat.take("alice"), chat.take("bob")
    chat.say("alice", "/quit")
    assert chat.take("bob") == ["*** alice left (quit)"]
    assert chat.take("alice") == ["*** alice left (quit)"]
    assert chat.closed == {"alice": "quit"}
    assert chat.room.nicks() == ["bob"]


@pytest.mark.parametrize("reason", ["closed", "reset", "timeout", "too slow", "server shutdown"])
def test_departures_carry_their_reason(chat: Pair, reason: str) -> None:
    chat.join("alice")
    chat.join("bob")
    chat.take("bob")
    actions = chat.room.disconnect("alice", reason)
    assert Left("alice", "alice", reason) in actions
    chat.run(actions)
    assert chat.take("bob") == [f"*** alice left ({reason})"]


def test_a_nickname_is_free_again_after_its_owner_left(chat: Pair) -> None:
    chat.join("alice")
    chat.run(chat.room.disconnect("alice", "closed"))
    chat.join("b", "Alice")
    assert chat.room.nicks() == ["Alice"]


def test_leaving_during_the_handshake_is_silent(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.connect("x")
    assert chat.room.disconnect("x", "closed") == []


def test_too_long_line_is_an_error_to_the_sender(chat: Pair) -> None:
    chat.join("alice")
    chat.take("alice")
    chat.run(chat.room.too_long("alice", 4096))
    assert chat.take("alice") == ["! line too long (max 4096 bytes)"]


def test_control_characters_cannot_reach_other_terminals(chat: Pair) -> None:
    chat.join("alice")
    chat.join("bob")
    chat.take("bob")
    chat.say("alice", b"\x1b[2J\x1b[Hpwned\x07")
    assert chat.take("bob") == ["alice: \\x1b[2J\\x1b[Hpwned\\x07"]


def test_joined_notice_for_the_server_log(chat: Pair) -> None:
    chat.connect("a")
    assert Joined("a", "Zoë") in chat.room.receive("a", "Zoë".encode())
