"""Pure TCP flow analysis: segments in, explained packet events and connection summaries out.

No capture, no printing: the live sniffer, the file reader and the tests all feed the same
FlowAnalyzer one Segment at a time (so a large file is never held in memory), and get back
one PacketEvent per segment. The numbers match Wireshark's:

- stream index: per unordered address/port pair, in order of first appearance from 0; a
  SYN with a new ISN on a finished connection starts a new stream, a retried SYN does not.
- relative seq/ack: per direction, rel = (raw - base) mod 2**32, where base is the ISN
  when that side's SYN was seen (so the SYN shows 0), else the first seq seen from that
  side minus 1 (or the peer's first ACK minus 1, whichever comes first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.capture.decode import ACK, FIN, RST, SYN, Segment, flags_text
from netlab.capture.explain import describe_data, looks_like_chat_prompt

MOD = 1 << 32
Endpoint = tuple[str, int]


def endpoint_text(ep: Endpoint) -> str:
    host, port = ep
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class PacketEvent:
    """One captured TCP segment, numbered, placed in its stream and explained."""

    number: int  # 1-based, in the order shown (= Wireshark's frame number for our pcap)
    time: float  # seconds since the first packet shown
    stream: int
    src: str
    sport: int
    dst: str
    dport: int
    flags: str  # scapy letters: S, SA, A, PA, FA, R, RA, ...
    seq: int  # relative
    ack: int  # relative; 0 when the ACK flag is not set
    length: int
    window: int
    from_client: bool
    kind: str  # handshake, data, ack, dup-ack, retransmission, fin, rst, ...
    explanation: str
    payload: bytes = b""
    ipv6: bool = False


@dataclass
class ConnectionSummary:
    index: int
    client: str
    server: str
    first_time: float
    last_time: float = 0.0
    packets: int = 0
    client_bytes: int = 0  # payload bytes sent by the client (retransmissions not counted)
    server_bytes: int = 0
    handshake: str = "not seen"  # complete, refused, incomplete, not seen (mid-stream)
    ending: str = "still open when the capture ended"
    retransmissions: int = 0
    duplicate_acks: int = 0
    syn_retries: int = 0
    mid_stream: bool = False
    nicknames: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max(0.0, self.last_time - self.first_time)


@dataclass
class _Side:
    base: int | None = None
    isn: int | None = None  # seq of this side's SYN, when seen
    next_seq: int | None = None  # relative: highest seq + segment length sent so far
    last_ack: int | None = None
    last_window: int | None = None
    fin_seq: int | None = None  # relative seq of this side's FIN
    dup_count: int = 0
    bytes_sent: int = 0


@dataclass
class _Stream:
    index: int
    client: Endpoint
    server: Endpoint
    summary: ConnectionSummary
    sides: dict[Endpoint, _Side]
    synack_seen: bool = False
    established: bool = False
    reset: bool = False
    first_fin: Endpoint | None = None
    simultaneous: bool = False
    closed: bool = False
    chat: bool = False
    expecting_nick: bool = False

    @property
    def finished(self) -> bool:
        fins = all(side.fin_seq is not None for side in self.sides.values())
        return self.reset or fins


class FlowAnalyzer:
    """Feed Segments in capture order; get PacketEvents; ask for connection summaries.

    server_port: when a capture starts mid-stream no SYN says who is the client; an
    endpoint on this port is taken as the server (else the lower port is).
    """

    def __init__(self, server_port: int | None = None) -> None:
        self.server_port = server_port
        self._streams: list[_Stream] = []
        self._current: dict[frozenset[Endpoint], _Stream] = {}
        self._count = 0
        self._t0: float | None = None

    @property
    def packets(self) -> int:
        return self._count

    def connections(self) -> list[ConnectionSummary]:
        return [stream.summary for stream in self._streams]

    def feed(self, seg: Segment) -> PacketEvent:
        if self._t0 is None:
            self._t0 = seg.time
        self._count += 1
        src: Endpoint = (seg.src, seg.sport)
        dst: Endpoint = (seg.dst, seg.dport)
        stream = self._stream_for(seg, src, dst)
        me, peer = stream.sides[src], stream.sides[dst]
        from_client = src == stream.client
        syn, ack = bool(seg.flags & SYN), bool(seg.flags & ACK)

        # Relative numbers (see the module docstring).
        if syn:
            me.base = seg.seq
            me.isn = seg.seq
        elif me.base is None:
            me.base = (seg.seq - 1) % MOD
        if ack and peer.base is None:
            peer.base = (seg.ack - 1) % MOD
        rel_seq = (seg.seq - me.base) % MOD
        rel_ack = (seg.ack - peer.base) % MOD if ack and peer.base is not None else 0

        if seg.length and not from_client and looks_like_chat_prompt(seg.payload):
            stream.chat = True  # the chat server's greeting: explain lines as chat
        kind, text = self._classify(stream, seg, src, dst, rel_seq, rel_ack, from_client)
        self._account(stream, seg, me, rel_seq, rel_ack, kind, from_client)
        return PacketEvent(
            number=self._count, time=seg.time - self._t0, stream=stream.index,
            src=seg.src, sport=seg.sport, dst=seg.dst, dport=seg.dport,
            flags=flags_text(seg.flags), seq=rel_seq, ack=rel_ack, length=seg.length,
            window=seg.window, from_client=from_client, kind=kind, explanation=text,
            payload=seg.payload, ipv6=seg.ipv6,
        )

    # -- streams -------------------------------------------------------------------------

    def _stream_for(self, seg: Segment, src: Endpoint, dst: Endpoint) -> _Stream:
        key = frozenset((src, dst))
        stream = self._current.get(key)
        pure_syn = seg.flags & (SYN | ACK) == SYN
        if stream is not None and pure_syn:
            old = stream.sides[src].isn
            retry = src == stream.client and old == seg.seq
            if not retry and (stream.finished or (old is not None and old != seg.seq)):
                stream = None  # the same ports again, a new connection (new ISN)
        if stream is None:
            stream = self._new_stream(seg, src, dst, key)
        return stream

    def _new_stream(self, seg: Segment, src: Endpoint, dst: Endpoint,
                    key: frozenset[Endpoint]) -> _Stream:
        if seg.flags & (SYN | ACK) == SYN:
            client, server = src, dst
        elif seg.flags & (SYN | ACK) == SYN | ACK:
            client, server = dst, src
        elif self.server_port is not None and self.server_port in (seg.sport, seg.dport):
            server = src if seg.sport == self.server_port else dst
            client = dst if server == src else src
        else:
            server = src if seg.sport < seg.dport else dst
            client = dst if server == src else src
        index = len(self._streams)
        summary = ConnectionSummary(
            index=index, client=endpoint_text(client), server=endpoint_text(server),
            first_time=seg.time, mid_stream=not seg.flags & SYN,
        )
        if summary.mid_stream:
            summary.handshake = "not seen (the capture started in the middle of the stream)"
        stream = _Stream(index=index, client=client, server=server, summary=summary,
                         sides={client: _Side(), server: _Side()},
                         established=summary.mid_stream)
        self._streams.append(stream)
        self._current[key] = stream
        return stream

    # -- what each segment is --------------------------------------------------------------

    def _classify(self, st: _Stream, seg: Segment, src: Endpoint, dst: Endpoint,
                  rel_seq: int, rel_ack: int, from_client: bool) -> tuple[str, str]:
        me, peer = st.sides[src], st.sides[dst]
        side = "client" if from_client else "server"
        other = "server" if from_client else "client"
        flags = seg.flags
        seglen = seg.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)

        if flags & RST:
            if not st.established and not from_client and not st.synack_seen:
                return "rst", (f"RST answers the SYN: nothing listens on port {seg.sport}, "
                               "connection refused (RFC 9293 §3.5.2)")
            return "rst", (f"RST from the {side}: connection aborted at once, no FIN exchange;"
                           " unsent and unread data are lost (RFC 9293 §3.5.2)")
        if flags & SYN and not flags & ACK:
            if st.summary.packets and me.next_seq is not None:
                return "syn-retry", ("SYN again with the same ISN: no SYN-ACK came back in time,"
                                     " so the client retries (initial RTO 1 s, RFC 6298)")
            return "handshake", ("handshake 1/3: client asks to connect and picks its initial"
                                 " sequence number, ISN (RFC 9293 §3.5)")
        if flags & SYN:
            if st.synack_seen:
                return "retransmission", ("SYN-ACK retransmitted: the server's SYN-ACK was not"
                                          " acknowledged in time")
            return "handshake", ("handshake 2/3: server accepts, picks its own ISN and"
                                 " acknowledges the client's ISN + 1")
        if me.next_seq is not None and seglen > 0 and rel_seq < me.next_seq:
            if seglen <= 1 and not flags & FIN and rel_seq == me.next_seq - 1:
                return "keepalive", (f"keep-alive probe from the {side}: one old byte to check"
                                     " the peer is still there (RFC 9293 §3.8.4)")
            return "retransmission", (f"retransmission: the {side} sends bytes it sent before,"
                                      " because no ACK for them came back in time")
        if flags & FIN:
            return "fin", self._fin_text(st, src, side, rel_ack)
        if seg.length:
            text = describe_data(seg.payload, seg.length, from_client, st.chat, st.expecting_nick)
            if (st.synack_seen and not st.established and from_client
                    and rel_seq == 1 and rel_ack == 1):
                text = "handshake 3/3 with data: connection ESTABLISHED; " + text
            return "data", text
        # A pure ACK from here on.
        if st.synack_seen and not st.established and from_client:
            return "handshake", "handshake 3/3: connection ESTABLISHED on both sides"
        if peer.fin_seq is not None and rel_ack == peer.fin_seq + 1 and me.last_ack != rel_ack:
            if me.fin_seq is not None:
                who = "both sides" if st.simultaneous else f"the {side}, the active closer,"
                return "close", (f"ACK of the last FIN: connection closed; {who} now waits in"
                                 " TIME-WAIT for 2*MSL (RFC 9293 §3.6)")
            return "ack", (f"ACK of the {other}'s FIN: the {side}'s recv() now returns b'' "
                           "(end of stream); it may still send")
        if (me.last_ack == rel_ack and me.last_window == seg.window
                and peer.next_seq is not None and peer.next_seq > rel_ack):
            me.dup_count += 1
            return "dup-ack", (f"duplicate ACK #{me.dup_count}: the {side} still expects byte"
                               f" {rel_ack}, a segment may be lost (3 trigger fast"
                               " retransmit, RFC 5681)")
        if me.last_ack == rel_ack and me.last_window is not None and me.last_window != seg.window:
            return "window-update", (f"window update: the {side} can now take"
                                     f" {seg.window} bytes (its receive buffer drained)")
        return "ack", f"ACK: {side} confirms bytes received so far (next expected: {rel_ack})"

    def _fin_text(self, st: _Stream, src: Endpoint, side: str, rel_ack: int) -> str:
        if st.first_fin is None:
            return (f"FIN: the {side} is done sending (active close; it can still receive,"
                    " RFC 9293 §3.6)")
        other_fin = st.sides[st.first_fin].fin_seq
        if other_fin is not None and rel_ack <= other_fin and st.first_fin != src:
            st.simultaneous = True
            return ("FIN: simultaneous close, both sides sent FIN before seeing the other's"
                    " (RFC 9293 §3.6, Figure 13)")
        return f"FIN: the {side} is done sending too (passive close)"

    def _account(self, st: _Stream, seg: Segment, me: _Side, rel_seq: int, rel_ack: int,
                 kind: str, from_client: bool) -> None:
        flags = seg.flags
        summary = st.summary
        summary.packets += 1
        summary.last_time = seg.time
        seglen = seg.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        end = rel_seq + seglen
        if me.next_seq is None or end > me.next_seq:
            me.next_seq = end
        if flags & ACK:
            me.last_ack = rel_ack
            me.last_window = seg.window
        if kind == "retransmission":
            summary.retransmissions += 1
        elif kind == "dup-ack":
            summary.duplicate_acks += 1
        elif kind == "syn-retry":
            summary.syn_retries += 1
        elif seg.length and kind in ("data", "fin"):
            me.bytes_sent += seg.length
            if from_client:
                summary.client_bytes += seg.length
            else:
                summary.server_bytes += seg.length
        if flags & SYN and flags & ACK:
            st.synack_seen = True
            if summary.handshake in ("not seen", "incomplete (no SYN-ACK seen)"):
                summary.handshake = "incomplete (no final ACK seen)"
        elif flags & SYN and summary.handshake.startswith("not seen") and not summary.mid_stream:
            summary.handshake = "incomplete (no SYN-ACK seen)"
        if st.synack_seen and not st.established and from_client and flags & ACK:
            st.established = True  # the client's first ACK after the SYN-ACK: step 3 of 3
            summary.handshake = "complete"
        self._chat_state(st, seg, from_client, kind)
        if flags & FIN and me.fin_seq is None:
            me.fin_seq = rel_seq + seg.length
            if st.first_fin is None:
                st.first_fin = (seg.src, seg.sport)
        if flags & RST:
            st.reset = True
            if not st.established and not from_client and not st.synack_seen:
                summary.handshake = "refused (RST)"
            summary.ending = f"RST from the {'client' if from_client else 'server'}"
        elif st.first_fin is not None and not st.reset:
            summary.ending = self._fin_ending(st)

    @staticmethod
    def _fin_ending(st: _Stream) -> str:
        closer = "client" if st.first_fin == st.client else "server"
        fins = [side.fin_seq is not None for side in st.sides.values()]
        if all(fins):
            if st.simultaneous:
                return "FIN from both sides at once (simultaneous close)"
            return f"FIN from both sides ({closer} closed first)"
        return f"half-closed: FIN from the {closer} only"

    @staticmethod
    def _chat_state(st: _Stream, seg: Segment, from_client: bool, kind: str) -> None:
        if kind != "data" and not (kind == "handshake" and seg.length):
            return
        if not from_client and looks_like_chat_prompt(seg.payload):
            st.chat = True
            st.expecting_nick = True
        elif from_client and st.expecting_nick:
            st.expecting_nick = False
            nick = seg.payload.decode("utf-8", "replace").strip()
            if nick:
                st.summary.nicknames.append(nick)
