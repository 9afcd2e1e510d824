"""Raw captured frames to TCP segments: pure byte parsing, no scapy, no sockets.

A capture file or a packet socket hands us bytes plus a link type (what sits in front of
the IP header). Parsing the few headers we need by hand is ~50x faster than dissecting
every packet with scapy, and it reads captures from any system the same way: Linux
(Ethernet, cooked SLL/SLL2), macOS loopback (NULL, where IPv6 is address family 24, 28
or 30 depending on the BSD that wrote the file), Windows' Npcap loopback (NULL), raw IP.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

# Link types from the pcap spec (tcpdump.org/linktypes.html).
DLT_NULL = 0
DLT_EN10MB = 1
DLT_RAW = 101
DLT_RAW_OLD = (12, 14)
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)
# BSD loopback address families: AF_INET is 2 everywhere, AF_INET6 differs per system
# (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS), so a NULL header can carry any of them.
AF_INET_BSD = 2
AF_INET6_BSD = (24, 28, 30)

IPPROTO_TCP = 6
# IPv6 extension headers we step over to find TCP (RFC 8200 §4).
_IPV6_EXTENSIONS = (0, 43, 60)
_IPV6_FRAGMENT = 44

# TCP flag bits, lowest first: scapy writes them in this order, so "SA", "FPA", "RA".
FLAG_LETTERS = "FSRPAUECN"
FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True)
class Segment:
    """One TCP segment as captured: addresses, absolute numbers, payload."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    flags: int
    seq: int
    ack: int
    window: int
    length: int  # payload length from the IP header (what Wireshark calls tcp.len)
    payload: bytes = b""  # the payload bytes actually captured (may be cut by snaplen)
    ipv6: bool = False

    @property
    def flag_text(self) -> str:
        return flags_text(self.flags)


def flags_text(flags: int) -> str:
    """scapy's spelling: letters in the order FSRPAUECN, e.g. 'SA', 'FPA', 'RA'."""
    return "".join(letter for bit, letter in enumerate(FLAG_LETTERS) if flags & (1 << bit))


def flags_names(flags: int) -> str:
    """Wireshark's spelling for people: 'SYN,ACK', 'PSH,ACK', 'FIN,ACK'."""
    order = (1, 2, 0, 3, 4, 5, 6, 7, 8)  # SYN and RST before FIN reads more naturally
    names = [FLAG_NAMES[bit] for bit in order if flags & (1 << bit)]
    return ",".join(names) or "none"


def parse_flags(text: str) -> int:
    """'SA' -> SYN|ACK; the inverse of flags_text."""
    value = 0
    for letter in text:
        value |= 1 << FLAG_LETTERS.index(letter)
    return value


def decode_frame(data: bytes, linktype: int, time: float = 0.0) -> Segment | None:
    """The TCP segment inside one captured frame, or None when there is none."""
    try:
        return _decode(memoryview(data), linktype, time)
    except (struct.error, IndexError, ValueError):
        return None  # truncated or malformed: not a TCP segment we can explain


def _decode(buf: memoryview, linktype: int, time: float) -> Segment | None:
    if linktype == DLT_EN10MB:
        etype = struct.unpack_from("!H", buf, 12)[0]
        offset = 14
        while etype in ETH_VLAN:  # 802.1Q tags: 4 more bytes each
            etype = struct.unpack_from("!H", buf, offset + 2)[0]
            offset += 4
        return _by_ethertype(buf, etype, offset, time)
    if linktype in (DLT_NULL, DLT_LOOP):
        # NULL stores the family in the capturing host's byte order, LOOP in network order.
        raw = bytes(buf[:4])
        family = struct.unpack("!I", raw)[0]
        if linktype == DLT_NULL and family > 0xFFFF:
            family = struct.unpack("<I", raw)[0]
        if family == AF_INET_BSD:
            return _ipv4(buf, 4, time)
        if family in AF_INET6_BSD:
            return _ipv6(buf, 4, time)
        return None
    if linktype in (DLT_RAW, *DLT_RAW_OLD):
        version = buf[0] >> 4
        if version == 4:
            return _ipv4(buf, 0, time)
        return _ipv6(buf, 0, time) if version == 6 else None
    if linktype == DLT_IPV4:
        return _ipv4(buf, 0, time)
    if linktype == DLT_IPV6:
        return _ipv6(buf, 0, time)
    if linktype == DLT_LINUX_SLL:
        return _by_ethertype(buf, struct.unpack_from("!H", buf, 14)[0], 16, time)
    if linktype == DLT_LINUX_SLL2:
        return _by_ethertype(buf, struct.unpack_from("!H", buf, 0)[0], 20, time)
    return None


def _by_ethertype(buf: memoryview, etype: int, offset: int, time: float) -> Segment | None:
    if etype == ETH_IPV4:
        return _ipv4(buf, offset, time)
    if etype == ETH_IPV6:
        return _ipv6(buf, offset, time)
    return None


def _ipv4(buf: memoryview, off: int, time: float) -> Segment | None:
    if buf[off] >> 4 != 4:
        return None
    ihl = (buf[off] & 0x0F) * 4
    total = struct.unpack_from("!H", buf, off + 2)[0]
    frag = struct.unpack_from("!H", buf, off + 6)[0] & 0x1FFF
    if buf[off + 9] != IPPROTO_TCP or frag:
        return None  # not TCP, or a later fragment without a TCP header
    src = str(ipaddress.IPv4Address(bytes(buf[off + 12:off + 16])))
    dst = str(ipaddress.IPv4Address(bytes(buf[off + 16:off + 20])))
    # total is 0 when the NIC did segmentation offload; then trust the captured bytes.
    end = off + total if total else len(buf)
    return _tcp(buf, off + ihl, end, src, dst, False, time)


def _ipv6(buf: memoryview, off: int, time: float) -> Segment | None:
    if buf[off] >> 4 != 6:
        return None
    plen = struct.unpack_from("!H", buf, off + 4)[0]
    nxt = buf[off + 6]
    src = str(ipaddress.IPv6Address(bytes(buf[off + 8:off + 24])))
    dst = str(ipaddress.IPv6Address(bytes(buf[off + 24:off + 40])))
    end = off + 40 + plen if plen else len(buf)
    pos = off + 40
    while nxt in _IPV6_EXTENSIONS or nxt == _IPV6_FRAGMENT:
        if nxt == _IPV6_FRAGMENT:
            if struct.unpack_from("!H", buf, pos + 2)[0] & 0xFFF8:
                return None  # a later fragment
            nxt, size = buf[pos], 8
        else:
            nxt, size = buf[pos], (buf[pos + 1] + 1) * 8
        pos += size
    if nxt != IPPROTO_TCP:
        return None
    return _tcp(buf, pos, end, src, dst, True, time)


def _tcp(buf: memoryview, off: int, end: int, src: str, dst: str, ipv6: bool,
         time: float) -> Segment | None:
    sport, dport, seq, ack, off_flags, window = struct.unpack_from("!HHIIHH", buf, off)
    header = (off_flags >> 12) * 4
    if header < 20:
        return None
    flags = off_flags & 0x1FF  # 9 bits: NS is the low bit of the data-offset byte
    length = max(0, end - off - header)
    payload = bytes(buf[off + header:min(end, len(buf))])
    return Segment(time=time, src=src, sport=sport, dst=dst, dport=dport, flags=flags,
                   seq=seq, ack=ack, window=window, length=length, payload=payload, ipv6=ipv6)
