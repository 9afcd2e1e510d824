"""Property tests of the pure protocol: arbitrary bytes, arbitrary chunkings."""

from __future__ import annotations

import itertools
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from netlab.chat.protocol import (
    MAX_NICK,
    ClientReader,
    LineFramer,
    LineTooLong,
    NickPrompt,
    check_nick,
    clean_text,
)
from netlab.chat.room import Broadcast, Room, Send


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


line_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))


@given(st.lists(line_bytes, max_size=20), st.lists(st.integers(0, 2000), max_size=30),
       st.booleans())
def test_lines_come_back_exactly_as_sent_whatever_the_chunking(
    lines: list[bytes], cuts: list[int], crlf: bool
) -> None:
    eol = b"\r\n" if crlf else b"\n"
    stream = b"".join(line + eol for line in lines)
    framer = LineFramer(max_line=100)
    out: list[bytes | LineTooLong] = []
    for chunk in chunked(stream, cuts):
        out.extend(framer.feed(chunk))
    expected = [line[:-1] if not crlf and line.endswith(b"\r") else line for line in lines]
    assert out == expected
    assert framer.pending == b""


@given(st.binary(max_size=3000), st.lists(st.integers(0, 5000), max_size=40),
       st.integers(1, 200))
def test_framer_never_raises_and_never_exceeds_its_limit(
    data: bytes, cuts: list[int], limit: int
) -> None:
    framer = LineFramer(max_line=limit)
    for chunk in chunked(data, cuts):
        for item in framer.feed(chunk):
            if isinstance(item, bytes):
                assert len(item) <= limit
                assert b"\n" not in item
            else:
                assert item == LineTooLong(limit)
        assert len(framer.pending) <= limit + 1


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=10), st.integers(1, 50))
def test_each_too_long_line_is_reported_exactly_once(lines: list[bytes], limit: int) -> None:
    lines = [line.replace(b"\n", b"x").replace(b"\r", b"x") for line in lines]
    framer = LineFramer(max_line=limit)
    out = framer.feed(b"".join(line + b"\n" for line in lines))
    assert out == [line if len(line) <= limit else LineTooLong(limit) for line in lines]


@given(st.binary(max_size=500))
def test_clean_text_is_total_and_leaves_no_control_characters(data: bytes) -> None:
    text = clean_text(data)
    assert all(not (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) for ch in text)
    assert "\u202e" not in text


@given(st.lists(st.binary(max_size=100), max_size=30))
def test_the_room_survives_any_lines_from_any_client(lines: list[bytes]) -> None:
    room = Room()
    for who in ("a", "b"):
        room.connect(who)
    room.receive("a", b"alice")
    for i, line in enumerate(lines):
        who = "ab"[i % 2]
        for action in room.receive(who, line.replace(b"\n", b"")):
            if isinstance(action, (Send, Broadcast)):
                assert action.data.endswith(b"\r\n")
                assert action.data.count(b"\n") == 1  # one action, one line: never injected
    assert len(set(map(str.casefold, room.nicks()))) == len(room.nicks())


@settings(max_examples=50)
@given(st.binary(max_size=400), st.lists(st.integers(0, 500), max_size=20))
def test_client_reader_never_raises(data: bytes, cuts: list[int]) -> None:
    reader = ClientReader(max_line=64)
    for chunk in chunked(data, cuts):
        for item in reader.feed(chunk):
            assert isinstance(item, (str, NickPrompt))
    reader.flush()


def nick_rule(nick: str) -> bool:
    """The nickname rule as the lesson states it: letters, digits and - _ . only."""
    return all(ch in "-_." or unicodedata.category(ch)[0] == "L"
               or unicodedata.category(ch) == "Nd" for ch in nick)


@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=20),
                 st.text(max_size=20)))
def test_a_nickname_is_accepted_exactly_when_the_rule_allows_it(raw: str) -> None:
    nick, problem = check_nick(raw)
    wanted = unicodedata.normalize("NFC", raw.strip())
    allowed = bool(wanted) and len(wanted) <= MAX_NICK and nick_rule(wanted)
    assert (nick == wanted and problem is None) if allowed else (nick is None and problem)
