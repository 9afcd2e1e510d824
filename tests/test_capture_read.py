"""`netlab capture --read`: any TCP capture, no privileges, and tshark as the referee.

The captures are built here with scapy (several streams, IPv6, RST, retransmissions, a
SYN retry, a reused port, a stream that starts mid-way, pcapng, macOS NULL loopback), so
each situation is in the file for sure; tshark then says what Wireshark shows for each
packet and netlab must agree, field for field.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap, wrpcapng

from netlab.capture.decode import DLT_NULL, flags_text
from netlab.capture.demo import sample_capture
from netlab.capture.pcapio import PcapWriter
from netlab.cli import cli
from tests.conftest import require_tool


def tcp(src: tuple[str, int], dst: tuple[str, int], flags: str, seq: int, ack: int = 0,
        data: bytes = b"") -> Packet:
    ip = IPv6(src=src[0], dst=dst[0]) if ":" in src[0] else IP(src=src[0], dst=dst[0])
    pkt = ip / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq % 2**32, ack=ack % 2**32)
    return pkt / Raw(data) if data else pkt


def varied_packets() -> list[Packet]:
    c, s = ("127.0.0.1", 40000), ("127.0.0.1", 55555)
    r = ("127.0.0.1", 40010)  # a client whose SYN meets a closed port
    c6, s6 = ("::1", 40020), ("::1", 55555)
    m, w = ("10.1.2.3", 51000), ("10.1.2.4", 80)  # started before the capture
    ci, si = 3_000_000_000, 4_294_967_200  # the server's numbers wrap past 2**32
    return [
        tcp(c, s, "S", ci), tcp(c, s, "S", ci),  # SYN retry
        tcp(s, c, "SA", si, ci + 1), tcp(c, s, "A", ci + 1, si + 1),
        tcp(m, w, "PA", 700, 900, b"GET / HTTP/1.0\r\n\r\n"),
        tcp(s, c, "PA", si + 1, ci + 1, b"NICK\r\n"),
        tcp(r, s, "S", 42), tcp(s, r, "RA", 0, 43),
        tcp(c, s, "PA", ci + 1, si + 7, b"alice\n"),
        tcp(c, s, "PA", ci + 7, si + 7, b"hello\n"),
        tcp(c, s, "PA", ci + 1, si + 7, b"alice\n"),  # retransmission
        tcp(s, c, "A", si + 7, ci + 13),
        tcp(c6, s6, "S", 10), tcp(s6, c6, "SA", 20, 11), tcp(c6, s6, "A", 11, 21),
        tcp(c6, s6, "PA", 11, 21, b"v6 hi\n"), tcp(s6, c6, "RA", 21, 17),
        tcp(w, m, "A", 900, 718),
        tcp(c, s, "FA", ci + 13, si + 7), tcp(s, c, "FA", si + 7, ci + 14),
        tcp(c, s, "A", ci + 14, si + 8),
        tcp(c, s, "S", 5_000), tcp(s, c, "SA", 6_000, 5_001),  # same ports, new connection
        tcp(c, s, "A", 5_001, 6_001),
    ]


def write_ethernet(path: Path, packets: list[Packet], ng: bool = False) -> None:
    frames = []
    for i, pkt in enumerate(packets):
        frame = Ether() / pkt
        frame.time = 1_700_000_000 + i / 100
        frames.append(frame)
    (wrpcapng if ng else wrpcap)(str(path), frames)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["capture", *args])
    return result.exit_code, result.stdout, result.stderr


def netlab_rows(path: Path) -> list[tuple[int, str, int, int, int]]:
    code, out, err = run("--read", str(path), "--json")
    assert code == 0, err
    rows = []
    for line in out.splitlines():
        obj = json.loads(line)
        if obj["type"] == "packet":
            ack = obj["ack"] if "A" in obj["flags"] else 0
            rows.append((obj["stream"], obj["flags"], obj["seq"], ack, obj["len"]))
    return rows


def tshark_rows(path: Path) -> list[tuple[int, str, int, int, int]]:
    tshark = require_tool("tshark")
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "tcp.stream",
         "-e", "tcp.flags", "-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.len"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        stream, flags, seq, ack, length = line.split("\t")
        letters = flags_text(int(flags, 16))
        rows.append((int(stream), letters, int(seq), int(ack or 0) if "A" in letters else 0,
                     int(length)))
    return rows


def test_varied_capture_agrees_with_tshark(tmp_path: Path) -> None:
    path = tmp_path / "varied.pcap"
    write_ethernet(path, varied_packets())
    ours = netlab_rows(path)
    assert len(ours) == len(varied_packets())
    assert ours == tshark_rows(path)


def test_varied_capture_story(tmp_path: Path) -> None:
    path = tmp_path / "varied.pcap"
    write_ethernet(path, varied_packets())
    code, out, err = run("--read", str(path), "--json")
    assert code == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    kinds = [o["kind"] for o in objs if o["type"] == "packet"]
    assert {"syn-retry", "retransmission", "rst", "close", "handshake"} <= set(kinds)
    conns = [o for o in objs if o["type"] == "connection"]
    assert [c["connection"] for c in conns] == list(range(5))
    by_server = {c["server"]: c for c in conns if c["client"].endswith(":40010")}
    assert by_server["127.0.0.1:55555"]["handshake"] == "refused (RST)"
    assert any(c["mid_stream"] for c in conns)
    assert any(c["client"] == "[::1]:40020" and c["ending"] == "RST from the server"
               for c in conns)
    assert "summary:" in err  # narration on stderr, stdout only JSON


def test_pcapng_and_macos_null_loopback(tmp_path: Path) -> None:
    ng = tmp_path / "chat.pcapng"
    write_ethernet(ng, varied_packets()[:6], ng=True)
    assert netlab_rows(ng) == tshark_rows(ng)
    null = tmp_path / "macos-lo0.pcap"
    writer = PcapWriter(null)
    for i, pkt in enumerate(varied_packets()[12:17]):  # the IPv6 stream
        writer.write(struct.pack("<I", 30) + bytes(pkt), 1_700_000_000 + i / 10, DLT_NULL)
    writer.close()
    rows = netlab_rows(null)
    assert [r[1] for r in rows] == ["S", "SA", "A", "PA", "RA"]
    assert rows == tshark_rows(null)


def test_sample_capture_follow_and_svg(tmp_path: Path) -> None:
    svg = tmp_path / "ladder.svg"
    code, out, err = run("--read", str(sample_capture()), "--follow", "--svg", str(svg))
    assert code == 0, err
    assert "#0 server< NICK" in out and "#0 client> alice" in out
    assert "client> /msg alice" in out
    assert "summary: 39 TCP packets, 2 connections" in out
    assert svg.read_text("utf-8").startswith("<svg") and "SYN" in svg.read_text("utf-8")


def test_sample_capture_story_and_ladder() -> None:
    code, out, _err = run("--read", str(sample_capture()))
    assert code == 0
    assert "handshake 1/3" in out and "server asks for a nickname" in out
    assert "ladder, stream 0" in out and "ladder, stream 1" in out
    assert out.count("chat nickname") == 2


def test_count_stops_early(tmp_path: Path) -> None:
    code, out, _err = run("--read", str(sample_capture()), "--json", "--count", "3")
    packets = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [p["flags"] for p in packets if p["type"] == "packet"] == [
        "S", "SA", "A"]


def test_file_without_tcp(tmp_path: Path) -> None:
    path = tmp_path / "udp.pcap"
    wrpcap(str(path), [Ether() / IP() / UDP(dport=53)])
    code, out, err = run("--read", str(path))
    assert code == 0 and out == ""
    assert "no TCP" in err and "1 packet" in err


@pytest.mark.parametrize("content", [None, b"this is not a capture file at all\n"])
def test_unreadable_files_exit_3_without_traceback(tmp_path: Path,
                                                   content: bytes | None) -> None:
    path = tmp_path / "bad.pcap"
    if content is not None:
        path.write_bytes(content)
    code, _out, err = run("--read", str(path))
    assert code == 3
    assert "Traceback" not in err
    assert ("no such file" in err) if content is None else ("not a pcap" in err)


def test_usage_errors_exit_2() -> None:
    assert run("--count", "3", "--timeout", "1")[0] == 2
    assert run("--read", "x.pcap", "--demo")[0] == 2


def test_a_capture_cut_short_is_read_to_its_last_whole_packet_and_said_so(
        tmp_path: Path) -> None:
    """A capture killed mid-write or half downloaded: read without a word before."""
    whole = tmp_path / "whole.pcap"
    write_ethernet(whole, varied_packets()[:4])
    data = whole.read_bytes()
    code, _out, err = run("--read", str(whole), "--no-ladder")
    assert code == 0 and "cut short" not in err
    # Inside the last record's data, then inside its 16-byte record header.
    record = 16 + len(Ether() / varied_packets()[3])
    for cut_at, whole_packets in ((len(data) - 5, 3), (len(data) - record + 7, 3)):
        cut = tmp_path / f"cut{cut_at}.pcap"
        cut.write_bytes(data[:cut_at])
        code, out, err = run("--read", str(cut), "--json")
        assert code == 0, err
        assert f"ends in the middle of a packet (cut short?): the {whole_packets} whole " \
               "packets before it are read" in err
        assert sum(json.loads(line)["type"] == "packet" for line in out.splitlines()) == \
            whole_packets
