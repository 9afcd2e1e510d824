"""A classic BPF program for `tcp port P and host H`, built without libpcap.

The kernel runs this program on every packet before it is queued for us, so unrelated
traffic never costs a copy or a queue slot: with only a Python-side filter, a busy
loopback made the kernel drop the chat's own packets. libpcap compiles the same filter
text into the same instructions (pcap-filter(7)); this module is the fallback when
libpcap is not installed. Frames are Ethernet (Linux `lo` has a zeroed Ethernet header).
"""

from __future__ import annotations

import ipaddress
import struct

Instruction = tuple[int, int, int, int]  # code, jt, jf, k (struct sock_filter)

# Opcodes (linux/filter.h): load, jump, return.
LDH_ABS, LDB_ABS, LDW_ABS = 0x28, 0x30, 0x20
LDXB_MSH, LDH_IND = 0xB1, 0x48
JEQ, JSET, JA, RET = 0x15, 0x45, 0x05, 0x06
SNAPLEN = 262144  # accept the whole packet (tcpdump's default snap length)


class _Asm:
    """Just enough of an assembler: labels, then one pass to turn them into offsets."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int = 0, jt: object = 0, jf: object = 0) -> None:
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def build(self) -> list[Instruction]:
        out: list[Instruction] = []
        for pc, (code, jt, jf, k) in enumerate(self.code):
            def rel(target: object, pc: int = pc) -> int:
                if isinstance(target, str):
                    offset = self.labels[target] - pc - 1
                    if not 0 <= offset <= 255:
                        raise ValueError("BPF jump out of range")
                    return offset
                return int(target)  # type: ignore[call-overload]
            if code == JA and isinstance(jt, str):
                out.append((code, 0, 0, self.labels[jt] - pc - 1))
            else:
                out.append((code, rel(jt), rel(jf), k))
        return out


def tcp_port_host(port: int, hosts: list[str]) -> list[Instruction]:
    """`tcp port PORT and (host A or host B ...)` for Ethernet frames, IPv4 and IPv6."""
    v4 = [ipaddress.ip_address(h) for h in hosts if ipaddress.ip_address(h).version == 4]
    v6 = [ipaddress.ip_address(h) for h in hosts if ipaddress.ip_address(h).version == 6]
    a = _Asm()
    a.op(LDH_ABS, 12)  # ethertype
    a.op(JEQ, 0x0800, "v4" if v4 else "drop", 0)
    a.op(JEQ, 0x86DD, "v6" if v6 else "drop", "drop")
    if v4:
        a.label("v4")
        a.op(LDB_ABS, 14 + 9)  # IPv4 protocol
        a.op(JEQ, 6, 0, "drop")
        a.op(LDH_ABS, 14 + 6)  # fragment offset: later fragments have no TCP header
        a.op(JSET, 0x1FFF, "drop", 0)
        for addr in v4:
            value = int(addr)
            a.op(LDW_ABS, 14 + 12)  # source address
            a.op(JEQ, value, "v4port", 0)
            a.op(LDW_ABS, 14 + 16)  # destination address
            a.op(JEQ, value, "v4port", 0)
        a.op(JA, 0, "drop")
        a.label("v4port")
        a.op(LDXB_MSH, 14)  # X = IP header length (4 * IHL)
        a.op(LDH_IND, 14)  # TCP source port
        a.op(JEQ, port, "accept", 0)
        a.op(LDH_IND, 16)  # TCP destination port
        a.op(JEQ, port, "accept", "drop")
    if v6:
        a.label("v6")
        a.op(LDB_ABS, 14 + 6)  # next header (no extension headers, as libpcap's "tcp")
        a.op(JEQ, 6, 0, "drop")
        for n, addr in enumerate(v6):
            words = struct.unpack("!4I", addr.packed)
            for which, base in (("s", 14 + 8), ("d", 14 + 24)):
                fail = f"no{which}{n}"
                for i, word in enumerate(words):
                    a.op(LDW_ABS, base + 4 * i)
                    a.op(JEQ, word, "v6port" if i == 3 else 0, fail)
                a.label(fail)
        a.op(JA, 0, "drop")
        a.label("v6port")
        a.op(LDH_ABS, 14 + 40)
        a.op(JEQ, port, "accept", 0)
        a.op(LDH_ABS, 14 + 42)
        a.op(JEQ, port, "accept", "drop")
    a.label("accept")
    a.op(RET, SNAPLEN)
    a.label("drop")
    a.op(RET, 0)
    return a.build()


def run(program: list[Instruction], packet: bytes) -> int:
    """A tiny classic-BPF interpreter: what the kernel would return for this packet.

    For tests (is our program the same filter as libpcap's?) and for students who want
    to step through one.
    """
    acc = x = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        try:
            if code == LDH_ABS:
                acc = struct.unpack_from("!H", packet, k)[0]
            elif code == LDB_ABS:
                acc = packet[k]
            elif code == LDW_ABS:
                acc = struct.unpack_from("!I", packet, k)[0]
            elif code == LDXB_MSH:
                x = (packet[k] & 0x0F) * 4
            elif code == LDH_IND:
                acc = struct.unpack_from("!H", packet, x + k)[0]
            elif code == JEQ:
                pc += jt if acc == k else jf
            elif code == JSET:
                pc += jt if acc & k else jf
            elif code == JA:
                pc += k
            elif code == RET:
                return k
            else:
                raise ValueError(f"opcode {code:#x} not supported here")
        except (IndexError, struct.error):
            return 0  # the kernel rejects a packet when a load runs past its end
