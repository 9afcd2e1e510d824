"""The pure capture analysis, on packets built with scapy: no capture, no files, no root.

Each test is one situation a student can meet on the wire, and what netlab must say.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw

from netlab.capture import bpf
from netlab.capture.analysis import FlowAnalyzer, PacketEvent
from netlab.capture.decode import (
    DLT_EN10MB,
    DLT_LINUX_SLL,
    DLT_NULL,
    DLT_RAW,
    decode_frame,
    flags_names,
    flags_text,
    parse_flags,
)
from netlab.capture.explain import preview
from netlab.capture.render import (
    connection_json,
    follow_chunk,
    ladder_text,
    packet_json,
    packet_line,
    summary_text,
)
from netlab.capture.svg import ladder_svg

C4, S4 = ("127.0.0.1", 40000), ("127.0.0.1", 55555)
C6, S6 = ("::1", 40001), ("::1", 55555)
CISN, SISN = 1_000_000, 4_294_967_000  # the server's ISN wraps past 2**32: rel must not care


class Conversation:
    """Builds the frames of one connection, keeping absolute seq/ack like a real stack."""

    def __init__(self, client: tuple[str, int] = C4, server: tuple[str, int] = S4,
                 cisn: int = CISN, sisn: int = SISN) -> None:
        self.client, self.server = client, server
        self.next = {client: cisn, server: sisn}
        self.frames: list[Packet] = []

    def send(self, frm: tuple[str, int], flags: str, data: bytes = b"", *,
             seq: int | None = None, ack: int | None = None, window: int = 65000) -> Packet:
        to = self.server if frm == self.client else self.client
        ip = IPv6(src=frm[0], dst=to[0]) if ":" in frm[0] else IP(src=frm[0], dst=to[0])
        seq = self.next[frm] if seq is None else seq
        ack_no = (self.next[to] if ack is None else ack) % 2**32 if "A" in flags else 0
        pkt = Ether() / ip / TCP(sport=frm[1], dport=to[1], flags=flags, seq=seq % 2**32,
                                 ack=ack_no, window=window)
        if data:
            pkt = pkt / Raw(data)
        advance = len(data) + ("S" in flags) + ("F" in flags)
        self.next[frm] = max(self.next[frm], seq + advance)
        self.frames.append(pkt)
        return pkt

    def handshake(self) -> Conversation:
        self.send(self.client, "S")
        self.send(self.server, "SA")
        self.send(self.client, "A")
        return self


def analyse(frames: list[Packet], server_port: int | None = 55555) -> tuple[
        list[PacketEvent], FlowAnalyzer]:
    analyzer = FlowAnalyzer(server_port=server_port)
    events = []
    for i, frame in enumerate(frames):
        seg = decode_frame(bytes(frame), DLT_EN10MB, 100.0 + i / 1000)
        assert seg is not None, frame.summary()
        events.append(analyzer.feed(seg))
    return events, analyzer


def rows(events: list[PacketEvent]) -> list[tuple[int, str, int, int, int]]:
    return [(ev.stream, ev.flags, ev.seq, ev.ack, ev.length) for ev in events]


def test_chat_session_handshake_data_and_close() -> None:
    conv = Conversation().handshake()
    conv.send(conv.server, "PA", b"NICK\r\n")
    conv.send(conv.client, "A")
    conv.send(conv.client, "PA", b"alice\n")
    conv.send(conv.server, "PA", b"*** Welcome, alice! 1 online; /help for commands\r\n")
    conv.send(conv.client, "PA", b"hello\n")
    conv.send(conv.server, "PA", b"alice: hello\r\n")
    conv.send(conv.client, "FA")
    conv.send(conv.server, "FA")
    conv.send(conv.client, "A")
    events, analyzer = analyse(conv.frames)

    assert rows(events)[:3] == [(0, "S", 0, 0, 0), (0, "SA", 0, 1, 0), (0, "A", 1, 1, 0)]
    assert [ev.kind for ev in events] == [
        "handshake", "handshake", "handshake", "data", "ack", "data", "data", "data", "data",
        "fin", "fin", "close"]
    assert "handshake 1/3" in events[0].explanation
    assert "ESTABLISHED" in events[2].explanation
    assert events[3].explanation == "server asks for a nickname"
    assert events[5].explanation == "client answers with its nickname"
    assert events[6].explanation.startswith("server welcomes")
    assert events[7].explanation == "client sends a chat message"
    assert "broadcasts" in events[8].explanation
    assert "active close" in events[9].explanation
    assert "passive close" in events[10].explanation
    assert "TIME-WAIT" in events[11].explanation and "client" in events[11].explanation
    # Relative numbers count bytes: after NICK\r\n (6 bytes) the client acks 7.
    assert (events[4].seq, events[4].ack) == (1, 7)
    assert (events[9].seq, events[9].ack) == (13, 1 + 6 + 50 + 14)
    assert [ev.from_client for ev in events[:3]] == [True, False, True]

    (conn,) = analyzer.connections()
    assert conn.handshake == "complete"
    assert conn.ending.startswith("FIN from both sides (client closed first)")
    assert (conn.client, conn.server) == ("127.0.0.1:40000", "127.0.0.1:55555")
    assert conn.client_bytes == 12 and conn.server_bytes == 6 + 50 + 14
    assert conn.nicknames == ["alice"]
    assert conn.retransmissions == conn.duplicate_acks == 0


def test_connection_refused_with_rst() -> None:
    conv = Conversation()
    conv.send(conv.client, "S")
    conv.send(conv.server, "RA", seq=0)
    events, analyzer = analyse(conv.frames)
    assert rows(events) == [(0, "S", 0, 0, 0), (0, "RA", 1, 1, 0)]  # as tshark shows
    assert "refused" in events[1].explanation and "RFC 9293" in events[1].explanation
    (conn,) = analyzer.connections()
    assert conn.handshake == "refused (RST)"
    assert conn.ending == "RST from the server"


@pytest.mark.parametrize(("flags", "handshake"), [
    (["S"], "incomplete (no SYN-ACK seen)"),
    (["S", "SA"], "incomplete (no final ACK seen)"),  # said "no SYN-ACK seen" over one
    (["S", "SA", "A"], "complete"),
])
def test_how_far_a_handshake_got(flags: list[str], handshake: str) -> None:
    conv = Conversation()
    for flag, side in zip(flags, (conv.client, conv.server, conv.client), strict=False):
        conv.send(side, flag)
    _, analyzer = analyse(conv.frames)
    (conn,) = analyzer.connections()
    assert conn.handshake == handshake
    one = summary_text([conn], 1) if len(flags) == 1 else ""
    assert "1 packets" not in one


def test_reset_of_an_established_connection() -> None:
    conv = Conversation().handshake()
    conv.send(conv.client, "PA", b"hi\n")
    conv.send(conv.client, "RA")
    events, analyzer = analyse(conv.frames)
    assert events[-1].kind == "rst" and "aborted" in events[-1].explanation
    assert analyzer.connections()[0].ending == "RST from the client"
    assert analyzer.connections()[0].handshake == "complete"


def test_simultaneous_close() -> None:
    conv = Conversation().handshake()
    ack_c, ack_s = conv.next[conv.server], conv.next[conv.client]
    conv.send(conv.client, "FA", ack=ack_c)  # both FINs leave before either arrives
    conv.send(conv.server, "FA", ack=ack_s)
    conv.send(conv.client, "A")
    conv.send(conv.server, "A")
    events, analyzer = analyse(conv.frames)
    assert "simultaneous close" in events[4].explanation
    assert [ev.kind for ev in events[5:]] == ["close", "close"]
    assert "both sides" in events[5].explanation
    assert "simultaneous" in analyzer.connections()[0].ending


def test_syn_retry_is_the_same_stream_and_a_new_isn_a_new_one() -> None:
    conv = Conversation()
    conv.send(conv.client, "S")
    conv.send(conv.client, "S", seq=CISN)  # no SYN-ACK came: the same SYN again
    conv.send(conv.server, "SA")
    conv.send(conv.client, "A")
    conv.send(conv.client, "FA")
    conv.send(conv.server, "FA")
    conv.send(conv.client, "A")
    again = Conversation(cisn=77_000, sisn=99_000).handshake()  # same ports, new ISN
    events, analyzer = analyse(conv.frames + again.frames)
    assert events[1].kind == "syn-retry" and events[1].stream == 0
    assert "same ISN" in events[1].explanation
    assert [ev.stream for ev in events[7:]] == [1, 1, 1]
    assert rows(events)[7:] == [(1, "S", 0, 0, 0), (1, "SA", 0, 1, 0), (1, "A", 1, 1, 0)]
    first, second = analyzer.connections()
    assert first.syn_retries == 1 and second.syn_retries == 0


def test_retransmission_and_duplicate_acks() -> None:
    conv = Conversation().handshake()
    conv.send(conv.client, "PA", b"0123456789")
    lost_seq = conv.next[conv.client]
    conv.send(conv.client, "PA", b"abcdefghij")  # imagine this one lost
    conv.send(conv.client, "PA", b"KLMNOPQRST")
    expected = lost_seq  # the server still waits for the lost bytes
    for _ in range(3):
        conv.send(conv.server, "A", ack=expected)
    conv.send(conv.client, "PA", b"abcdefghij", seq=lost_seq)  # fast retransmit
    events, analyzer = analyse(conv.frames)
    kinds = [ev.kind for ev in events]
    assert kinds[6:] == ["ack", "dup-ack", "dup-ack", "retransmission"]
    assert "duplicate ACK #1" in events[7].explanation
    assert "retransmission" in events[9].explanation
    assert events[9].seq == 11 and events[9].length == 10
    conn = analyzer.connections()[0]
    assert (conn.retransmissions, conn.duplicate_acks) == (1, 2)
    assert conn.client_bytes == 30  # the retransmitted copy is not counted twice


def test_ipv6_conversation() -> None:
    conv = Conversation(client=C6, server=S6).handshake()
    conv.send(conv.client, "PA", b"hello over v6\n")
    conv.send(conv.server, "A")
    events, analyzer = analyse(conv.frames)
    assert all(ev.ipv6 for ev in events)
    assert rows(events) == [(0, "S", 0, 0, 0), (0, "SA", 0, 1, 0), (0, "A", 1, 1, 0),
                            (0, "PA", 1, 1, 14), (0, "A", 1, 15, 0)]
    assert analyzer.connections()[0].client == "[::1]:40001"


def test_capture_starting_mid_stream() -> None:
    """No SYN: base = first seq - 1, or the peer's ack - 1 (what tshark shows)."""
    conv = Conversation(cisn=5000, sisn=9000)
    conv.send(conv.server, "PA", b"abc\r\n", seq=9100, ack=5200)
    conv.send(conv.client, "A", seq=5200, ack=9105)
    conv.send(conv.client, "PA", b"hi\n", seq=5200, ack=9105)
    events, analyzer = analyse(conv.frames)
    assert rows(events) == [(0, "PA", 1, 1, 5), (0, "A", 1, 6, 0), (0, "PA", 1, 6, 3)]
    assert events[0].from_client is False  # port 55555 is the server's
    conn = analyzer.connections()[0]
    assert conn.mid_stream and conn.handshake.startswith("not seen")
    assert conn.ending.startswith("still open")


def test_several_streams_numbered_in_order_of_appearance() -> None:
    a = Conversation(client=("127.0.0.1", 40000))
    b = Conversation(client=("127.0.0.1", 40002))
    a.send(a.client, "S")
    b.send(b.client, "S")
    a.send(a.server, "SA")
    b.send(b.server, "SA")
    frames = [a.frames[0], b.frames[0], a.frames[1], b.frames[1]]
    events, analyzer = analyse(frames)
    assert [ev.stream for ev in events] == [0, 1, 0, 1]
    assert len(analyzer.connections()) == 2


@pytest.mark.parametrize("family", [24, 28, 30])
def test_macos_null_loopback_ipv6_and_byte_orders(family: int) -> None:
    tcp = IPv6(src="::1", dst="::1") / TCP(sport=1, dport=2, flags="S", seq=7)
    little = family.to_bytes(4, "little") + bytes(tcp)
    big = family.to_bytes(4, "big") + bytes(tcp)
    for frame in (little, big):
        seg = decode_frame(frame, DLT_NULL)
        assert seg is not None and seg.ipv6 and seg.flag_text == "S" and seg.seq == 7
    assert decode_frame(bytes(Loopback(type=2) / IP() / TCP()), DLT_NULL) is not None


def test_other_link_types_and_non_tcp() -> None:
    tcp = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5, dport=6, flags="PA") / Raw(b"xy")
    assert decode_frame(bytes(tcp), DLT_RAW).length == 2  # type: ignore[union-attr]
    assert decode_frame(bytes(CookedLinux(proto=0x800) / tcp), DLT_LINUX_SLL) is not None
    vlan = decode_frame(bytes(Ether() / Dot1Q(vlan=5) / tcp), DLT_EN10MB)
    assert vlan is not None and vlan.src == "10.0.0.1"
    assert decode_frame(bytes(Ether() / IP() / UDP()), DLT_EN10MB) is None
    assert decode_frame(b"\x00\x01", DLT_EN10MB) is None  # truncated: no crash


def test_flag_spellings() -> None:
    assert flags_text(parse_flags("FPA")) == "FPA"
    assert [flags_text(int(TCP(flags=f).flags)) for f in ("SA", "RA", "FA")] == ["SA", "RA", "FA"]
    assert flags_names(parse_flags("SA")) == "SYN,ACK"
    assert flags_names(parse_flags("FPA")) == "FIN,PSH,ACK"


def test_renderers() -> None:
    conv = Conversation().handshake()
    conv.send(conv.server, "PA", b"NICK\r\n")
    conv.send(conv.client, "PA", b"bob\n")
    events, analyzer = analyse(conv.frames)
    packet = packet_json(events[3])
    for key in ("type", "stream", "src", "sport", "dst", "dport", "flags", "seq", "ack", "len",
                "explanation"):
        assert key in packet
    conn = connection_json(analyzer.connections()[0])
    assert conn["type"] == "connection"
    assert not (set(conn) - {"type"}) & set(packet)
    json.dumps(conn)
    assert "server asks for a nickname" in packet_line(events[3])
    assert follow_chunk(events[3]) == "#0 server< NICK"
    ladder = ladder_text(events)
    assert "client 127.0.0.1:40000" in ladder and ">|" in ladder and "|<" in ladder
    assert "2 TCP packets" not in summary_text(analyzer.connections(), analyzer.packets)
    svg = ladder_svg(events, "t & t")
    root = ET.fromstring(svg)  # well-formed XML, titles escaped
    assert root.tag.endswith("svg") and svg.count("<line") >= len(events)
    assert preview(b"NICK\r\n") == '"NICK\\r\\n"'
    assert preview(bytes(range(20))).startswith("00 01")


def _chat_packets() -> list[tuple[bytes, bool]]:
    ok = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=40000, dport=55555),
          Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=55555, dport=40000),
          Ether() / IPv6(src="::1", dst="::1") / TCP(sport=55555, dport=1)]
    bad = [Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=40000, dport=8080),
           Ether() / IP(src="127.0.0.2", dst="127.0.0.3") / TCP(sport=40000, dport=55555),
           Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=55555),
           Ether() / IPv6(src="::1", dst="::1") / TCP(sport=2, dport=3),
           Ether() / IP(src="127.0.0.1", dst="127.0.0.1", frag=5) / TCP(dport=55555)]
    return [(bytes(p), True) for p in ok] + [(bytes(p), False) for p in bad]


def test_bpf_program_accepts_exactly_the_chat() -> None:
    program = bpf.tcp_port_host(55555, ["127.0.0.1", "::1"])
    for frame, wanted in _chat_packets():
        assert bool(bpf.run(program, frame)) is wanted, Ether(frame).summary()


def test_bpf_program_agrees_with_libpcap() -> None:
    from scapy.arch.common import compile_filter

    try:
        compiled = compile_filter("tcp port 55555 and host 127.0.0.1", linktype=DLT_EN10MB)
    except ImportError:
        pytest.skip("libpcap is not installed: nothing to compare with")
    libpcap = [(compiled.bf_insns[i].code, compiled.bf_insns[i].jt, compiled.bf_insns[i].jf,
                compiled.bf_insns[i].k) for i in range(compiled.bf_len)]
    ours = bpf.tcp_port_host(55555, ["127.0.0.1"])
    for frame, _wanted in _chat_packets():
        assert bool(bpf.run(ours, frame)) == bool(bpf.run(libpcap, frame))


def test_interface_choice_and_filter_text() -> None:
    from netlab.capture.sniffer import bpf_expression, pick_interface

    ifaces = {"lo": ["127.0.0.1", "::1"], "eth0": ["192.0.2.10", "fe80::1"]}
    assert pick_interface(["127.0.0.1"], "linux", ifaces) == "lo"
    assert pick_interface(["::1"], "darwin", {"lo0": ["::1"], "en0": []}) == "lo0"
    assert pick_interface(["192.0.2.10"], "linux", ifaces) == "eth0"
    assert pick_interface(["198.51.100.7"], "linux", ifaces) is None  # remote: ask routes
    assert bpf_expression(55555, ["127.0.0.1"]) == "tcp port 55555 and host 127.0.0.1"
    assert bpf_expression(1, ["127.0.0.1", "::1"]) == "tcp port 1 and (host 127.0.0.1 or host ::1)"


@pytest.mark.parametrize("platform,word", [("linux", "CAP_NET_RAW"), ("win32", "Npcap"),
                                           ("darwin", "sudo")])
def test_no_right_to_capture_says_how_to_get_it(platform: str, word: str) -> None:
    from netlab.capture.sniffer import not_permitted

    exc = not_permitted(platform)
    assert exc.exit_code == 3
    assert "root or Administrator" in exc.message
    assert word in (exc.hint or "") and "--read" in (exc.hint or "")
