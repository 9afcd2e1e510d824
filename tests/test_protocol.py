"""The pure protocol: framing, text cleaning, nickname rules, the client's reader."""

from __future__ import annotations

import pytest

from netlab.chat.protocol import (
    ClientReader,
    LineFramer,
    LineTooLong,
    NickPrompt,
    check_nick,
    clean_text,
    nick_key,
)


def feed_all(framer: LineFramer, chunks: list[bytes]) -> list[bytes | LineTooLong]:
    out: list[bytes | LineTooLong] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


class TestFraming:
    def test_one_line_per_chunk(self) -> None:
        assert LineFramer().feed(b"hello\n") == [b"hello"]

    def test_crlf_and_lf_both_end_a_line(self) -> None:
        assert LineFramer().feed(b"a\r\nb\n") == [b"a", b"b"]

    def test_a_line_split_across_chunks_is_reassembled(self) -> None:
        assert feed_all(LineFramer(), [b"hel", b"lo wo", b"rld\r", b"\n"]) == [b"hello world"]

    def test_coalesced_lines_come_out_separately(self) -> None:
        assert LineFramer().feed(b"one\ntwo\nthree\n") == [b"one", b"two", b"three"]

    def test_byte_by_byte(self) -> None:
        data = b"alice\nhi there\r\n"
        assert feed_all(LineFramer(), [bytes([b]) for b in data]) == [b"alice", b"hi there"]

    def test_unfinished_line_waits(self) -> None:
        framer = LineFramer()
        assert framer.feed(b"no newline yet") == []
        assert framer.pending == b"no newline yet"

    def test_multibyte_character_split_across_reads(self) -> None:
        data = "héllo €\n".encode()
        split = data.index("€".encode()) + 1  # inside the 3-byte euro sign
        lines = feed_all(LineFramer(), [data[:split], data[split:]])
        assert [clean_text(line) for line in lines if isinstance(line, bytes)] == ["héllo €"]

    def test_line_at_the_limit_passes(self) -> None:
        assert LineFramer(max_line=5).feed(b"12345\r\n") == [b"12345"]

    def test_line_over_the_limit_is_reported_once_and_discarded(self) -> None:
        framer = LineFramer(max_line=5)
        assert framer.feed(b"123456\nok\n") == [LineTooLong(5), b"ok"]

    def test_long_line_over_many_chunks_reported_once(self) -> None:
        framer = LineFramer(max_line=10)
        out = feed_all(framer, [b"x" * 7] * 20 + [b"tail\nnext\n"])
        assert out == [LineTooLong(10), b"next"]

    def test_ten_megabytes_without_newline_keeps_memory_bounded(self) -> None:
        framer = LineFramer(max_line=4096)
        chunk = b"y" * 65536
        events = feed_all(framer, [chunk] * 160)
        assert events == [LineTooLong(4096)]
        assert framer.pending == b""  # nothing of the long line is kept

    def test_empty_lines_are_lines(self) -> None:
        assert LineFramer().feed(b"\n\r\n") == [b"", b""]


class TestCleanText:
    def test_invalid_utf8_is_replaced(self) -> None:
        assert clean_text(b"caf\xe9 \xff") == "caf\ufffd \ufffd"

    def test_escape_sequences_become_visible(self) -> None:
        assert clean_text(b"\x1b[2Jgotcha") == "\\x1b[2Jgotcha"

    def test_c1_csi_is_escaped(self) -> None:
        assert clean_text("\x9b2J".encode()) == "\\x9b2J"

    def test_backspace_and_del_edit_the_line(self) -> None:
        assert clean_text(b"helo\x08lo") == "hello"
        assert clean_text(b"ab\x7f\x7f\x7fc") == "c"

    def test_bidi_override_is_escaped(self) -> None:
        assert clean_text("a\u202eb".encode()) == "a\\u202eb"

    def test_printable_text_is_untouched(self) -> None:
        assert clean_text("Grüße, 世界 🙂".encode()) == "Grüße, 世界 🙂"


class TestNicknames:
    @pytest.mark.parametrize("nick", ["alice", "Bob_2", "a.b-c", "Zoë", "李雷", "x" * 16])
    def test_valid(self, nick: str) -> None:
        assert check_nick(nick) == (nick, None)

    @pytest.mark.parametrize(
        ("nick", "reason"),
        [
            ("", "empty"),
            ("x" * 17, "too long"),
            ("two words", "letters, digits"),
            ("bad!", "letters, digits"),
            ("\x1b[31m", "letters, digits"),
        ],
    )
    def test_invalid(self, nick: str, reason: str) -> None:
        value, problem = check_nick(nick)
        assert value is None
        assert problem is not None and reason in problem

    def test_nfc_normalisation_counts_characters_not_code_points(self) -> None:
        decomposed = "e\u0301" * 16  # 32 code points, 16 characters after NFC
        value, problem = check_nick(decomposed)
        assert problem is None and value == "\u00e9" * 16

    def test_uniqueness_key_ignores_case_and_normal_form(self) -> None:
        assert nick_key("ALICE") == nick_key("alice")
        assert nick_key("Zoe\u0308") == nick_key("ZOË")
        assert nick_key("Straße") == nick_key("STRASSE")


class TestClientReader:
    def test_framed_nick_prompt(self) -> None:
        assert ClientReader().feed(b"NICK\r\n") == [NickPrompt()]

    def test_bare_nick_prompt_from_a_tutorial_server(self) -> None:
        assert ClientReader().feed(b"NICK") == [NickPrompt()]

    def test_lines_are_cleaned(self) -> None:
        assert ClientReader().feed(b"bob: \x1b[2J\r\n") == ["bob: \\x1b[2J"]

    def test_unframed_text_is_shown_on_flush(self) -> None:
        reader = ClientReader()
        assert reader.feed(b"alice joined!") == []
        assert reader.flush() == ["alice joined!"]
        assert reader.flush() == []
