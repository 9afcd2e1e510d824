"""The live-capture shell around scapy: pick the interface, check the right to capture,
filter in the kernel, show each loopback packet once, and say when we are really listening.

Everything here is I/O; what the packets mean is analysis.py's job. scapy and psutil are
imported inside functions: `import scapy.all` alone costs about half a second.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netlab.capture import bpf
from netlab.errors import ExitStatus, NetlabError

# Linux packet-socket options (linux/if_packet.h).
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20+
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33  # like SO_RCVBUF, but root may pass the rmem_max limit
RCVBUF = 8 << 20

OnFrame = Callable[[bytes, int, float], bool]  # (frame, linktype, time) -> stop now?


class CaptureNotPermitted(NetlabError):
    exit_code = ExitStatus.FAILED


class CaptureFailed(NetlabError):
    exit_code = ExitStatus.FAILED


def not_permitted(platform: str = sys.platform, detail: str = "") -> CaptureNotPermitted:
    if platform.startswith("win"):
        how = ("run the terminal as Administrator, with Npcap installed (npcap.com) and its"
               " 'loopback adapter' option ticked for 127.0.0.1 traffic")
    elif platform == "darwin":
        how = ("run it with sudo (macOS lets only root, or members of the access_bpf group"
               " that Wireshark's ChmodBPF sets up, open /dev/bpf*)")
    else:
        how = ("run it with sudo, or give this Python the CAP_NET_RAW capability:"
               " python3 -m venv --copies venv && sudo setcap cap_net_raw+eip venv/bin/python3"
               " (setcap needs a real file, not the usual symlink)")
    message = ("capturing packets needs special rights: root or Administrator"
               " (or CAP_NET_RAW on Linux, or Npcap with its loopback adapter on Windows)")
    if detail:
        message += f" ({detail})"
    return CaptureNotPermitted(
        message,
        f"{how}. Without them, analyse a saved capture: netlab capture --read FILE.pcap"
        " (netlab capture --demo shows a sample one)",
    )


def check_capture_right(platform: str = sys.platform) -> None:
    """Fail fast, before importing scapy: one raw-socket probe tells on Linux."""
    if not platform.startswith("linux"):
        return
    try:
        probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise not_permitted(platform, exc.strerror or "Operation not permitted") from exc
    probe.close()


# -- which interface ---------------------------------------------------------------------

def resolve_addresses(host: str) -> list[str]:
    """The IP addresses --host stands for (a name may have several, v4 and v6)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    from netlab.diagnose.catalog import socket_problem

    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise socket_problem(exc, "resolve", host) from exc
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%")[0]
        if addr not in seen:
            seen.append(addr)
    return seen


def is_loopback(addresses: list[str]) -> bool:
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def pick_interface(addresses: list[str], platform: str,
                   interfaces: dict[str, list[str]]) -> str | None:
    """Loopback for 127.x and ::1; else the interface that owns one of the addresses.

    Returns None when no local interface owns them (a remote host: ask the routing table).
    """
    if is_loopback(addresses):
        for name in ("lo", "lo0"):
            if name in interfaces:
                return name
        if platform.startswith("win"):
            return None  # Npcap's loopback adapter: scapy knows its name
        return "lo0" if platform == "darwin" or "bsd" in platform else "lo"
    for name, owned in interfaces.items():
        if any(a in owned for a in addresses):
            return name
    return None


def local_interfaces() -> dict[str, list[str]]:
    import psutil

    out: dict[str, list[str]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        out[name] = [str(a.address).split("%")[0] for a in addrs
                     if a.family in (socket.AF_INET, socket.AF_INET6)]
    return out


def choose_interface(host: str, iface: str, platform: str = sys.platform) -> tuple[str, list[str]]:
    addresses = resolve_addresses(host)
    if iface != "auto":
        return iface, addresses
    name = pick_interface(addresses, platform, local_interfaces())
    if name is not None:
        return name, addresses
    from scapy.config import conf

    if is_loopback(addresses):
        return str(conf.loopback_name), addresses
    addr = addresses[0]
    route = conf.route6.route(addr) if ":" in addr else conf.route.route(addr)
    return str(route[0]), addresses


def bpf_expression(port: int, addresses: list[str]) -> str:
    hosts = " or ".join(f"host {a}" for a in addresses)
    if len(addresses) > 1:
        hosts = f"({hosts})"
    return f"tcp port {port} and {hosts}"


# -- the capture ---------------------------------------------------------------------------

@dataclass
class LiveCapture:
    """A running capture: frames go to on_frame (in the sniffer thread) until it says stop."""

    iface: str
    port: int
    addresses: list[str]
    on_frame: OnFrame
    filter_mode: str = ""
    dedup_mode: str = ""
    kernel_drops: int = 0
    notes: list[str] = field(default_factory=list)
    _sniffer: Any = None
    _sock: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _linktype: int = 1
    error: BaseException | None = None  # raised by on_frame, re-raised by the caller
    interrupted: bool = False

    def start(self, ready_timeout: float = 5.0) -> None:
        """Open the socket, start the sniffer thread, return once it is really listening."""
        check_capture_right()
        if hasattr(socket, "if_nametoindex") and not sys.platform.startswith("win"):
            try:
                socket.if_nametoindex(self.iface)
            except OSError as exc:
                names = ", ".join(name for _i, name in socket.if_nameindex())
                raise CaptureFailed(f"there is no interface called {self.iface!r}",
                                    f"use one of: {names}, or leave --iface auto") from exc
        try:
            if sys.platform.startswith("linux"):
                sniffer = self._linux_sniffer()
            else:
                sniffer = self._pcap_sniffer()
        except PermissionError as exc:
            raise not_permitted(detail=exc.strerror or str(exc)) from exc
        ready = threading.Event()
        sniffer.kwargs["started_callback"] = ready.set
        self._sniffer = sniffer
        sniffer.start()
        # Packets sent before the sniffer's loop runs could be missed: wait for its signal.
        if not ready.wait(ready_timeout):
            self._raise_thread_error()
            raise CaptureFailed(f"the sniffer on {self.iface} did not start within "
                                f"{ready_timeout:.0f} s")

    def _linux_sniffer(self) -> Any:
        import scapy.layers.l2  # noqa: F401 - registers Ethernet, so lo's frames get a type
        from scapy.arch.linux import L2ListenSocket, L2Socket, _flush_fd
        from scapy.config import conf
        from scapy.sendrecv import AsyncSniffer

        loop = is_loopback(self.addresses) or self.iface == "lo"
        # On lo each packet passes the tap twice (sent, then received). L2Socket hides
        # the outgoing copy; on other interfaces outgoing packets are ours and wanted.
        cls = L2Socket if loop else L2ListenSocket
        try:
            sock = cls(iface=self.iface, promisc=False, nofilter=1)
        except (OSError, ValueError) as exc:
            if isinstance(exc, PermissionError):
                raise
            raise CaptureFailed(f"cannot open a capture socket on {self.iface}: {exc}",
                                "check the name with `ip link`, or leave --iface auto") from exc
        self._sock = sock
        if loop:
            try:  # let the kernel drop the outgoing copy before it is even queued
                sock.ins.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
                self.dedup_mode = "kernel (PACKET_IGNORE_OUTGOING)"
            except OSError:
                self.dedup_mode = "netlab (outgoing copies skipped)"
        # A roomy queue: the default 64 KiB holds only a few dozen loopback skbs, so a
        # burst while Python is busy printing would be dropped by the kernel.
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.ins.setsockopt(socket.SOL_SOCKET, option, RCVBUF)
                break
        program, self.filter_mode = self._program()
        _attach(sock.ins, program)
        _flush_fd(sock.ins.fileno())  # drop what queued before the filter was in place
        self._read_drops()  # reading the statistics resets them
        self._linktype = conf.l2types.layer2num.get(sock.LL, 1)
        sock.LL = conf.raw_layer  # hand us bytes: analysis decodes them itself, faster
        return AsyncSniffer(opened_socket=sock, prn=self._on_packet, store=False,
                            stop_filter=lambda _pkt: self._stop.is_set())

    def _program(self) -> tuple[list[bpf.Instruction], str]:
        expr = bpf_expression(self.port, self.addresses)
        try:
            from scapy.arch.common import compile_filter

            compiled = compile_filter(expr, linktype=1)
            program = [(compiled.bf_insns[i].code, compiled.bf_insns[i].jt,
                        compiled.bf_insns[i].jf, compiled.bf_insns[i].k)
                       for i in range(compiled.bf_len)]
            return program, f"kernel BPF `{expr}` (compiled by libpcap)"
        except (ImportError, OSError):
            return (bpf.tcp_port_host(self.port, self.addresses),
                    f"kernel BPF `{expr}` (built by netlab; libpcap not found)")

    def _pcap_sniffer(self) -> Any:
        """macOS, BSD, Windows: libpcap/Npcap filters in the kernel and has no duplicates."""
        from scapy.config import conf
        from scapy.sendrecv import AsyncSniffer

        conf.sniff_promisc = False
        expr = bpf_expression(self.port, self.addresses)
        kwargs: dict[str, Any] = {"iface": self.iface, "prn": self._on_packet, "store": False,
                                  "stop_filter": lambda _pkt: self._stop.is_set()}
        if conf.use_pcap:
            self.filter_mode = f"kernel BPF `{expr}` (libpcap)"
            return AsyncSniffer(filter=expr, **kwargs)
        self.filter_mode = "Python filter (slow: busy interfaces may drop packets)"
        self.notes.append("install libpcap (Npcap on Windows) so the kernel filters the packets")
        return AsyncSniffer(lfilter=self._python_filter, **kwargs)

    def _python_filter(self, pkt: Any) -> bool:
        from netlab.capture.decode import decode_frame

        lt = _linktype_of(pkt)
        seg = decode_frame(bytes(pkt), lt)
        return seg is not None and self.port in (seg.sport, seg.dport) and (
            seg.src in self.addresses or seg.dst in self.addresses)

    def _on_packet(self, pkt: Any) -> None:
        if self._stop.is_set():
            return
        linktype = self._linktype if self._sock is not None else _linktype_of(pkt)
        try:
            if self.on_frame(bytes(pkt), linktype, float(pkt.time)):
                self._stop.set()
        except BaseException as exc:  # scapy would only log it and drop the socket
            self.error = exc
            self._stop.set()

    def interrupt(self) -> None:
        """Ctrl-C: stop like --count or --timeout would (safe from a signal handler)."""
        self.interrupted = True
        self._stop.set()

    def wait(self, timeout: float | None = None) -> str:
        """Block until the count is reached, the timeout passes or Ctrl-C; say which."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        reason = "stopped"
        try:
            while not self._stop.is_set():
                if self._sniffer is None or not self._sniffer.running:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    reason = "timeout"
                    break
                self._stop.wait(0.1)
            else:
                reason = "count"
        except KeyboardInterrupt:
            self.interrupted = True
        return "interrupted" if self.interrupted else reason

    def stop(self, drain: bool = True) -> None:
        """Stop the sniffer; with drain, first show what the kernel already queued for us
        (a packet the client has seen echoed has passed the tap: it must not go missing)."""
        count_reached = self._stop.is_set() and not self.interrupted
        self._stop.set()
        sniffer = self._sniffer
        if sniffer is not None:
            if sniffer.running:
                with contextlib.suppress(Exception):  # a thread error is reported below
                    sniffer.stop(join=False)
            if sniffer.thread is not None:
                sniffer.thread.join(5.0)
        if drain and not count_reached and self.error is None:
            self._drain()
        self._read_drops()
        if self._sock is not None:
            self._sock.close()
        self._raise_thread_error()

    def _drain(self) -> None:
        import select

        sock = self._sock
        if sock is None or sock.ins is None:
            return
        for _ in range(10000):  # bounded: a flood must not keep us here
            if not select.select([sock.ins], [], [], 0)[0]:
                return
            try:
                pkt = sock.recv()
            except OSError:
                return
            if pkt is None:
                continue  # an outgoing copy skipped by L2Socket
            try:
                if self.on_frame(bytes(pkt), self._linktype, float(pkt.time)):
                    return
            except BaseException as exc:
                self.error = exc
                return

    def _raise_thread_error(self) -> None:
        exc = getattr(self._sniffer, "exception", None)
        if exc is None:
            return
        if isinstance(exc, PermissionError):
            raise not_permitted(detail=str(exc)) from exc
        raise CaptureFailed(f"the capture stopped with an error: {exc}") from exc

    def _read_drops(self) -> None:
        if self._sock is None or self._sock.ins is None:
            return
        try:
            raw = self._sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return
        _packets, drops = struct.unpack("II", raw)
        self.kernel_drops += drops


def _attach(sock: socket.socket, program: list[bpf.Instruction]) -> None:
    """SO_ATTACH_FILTER: hand the kernel a struct sock_fprog {len, *filter}."""
    import ctypes

    blob = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(blob)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _linktype_of(pkt: Any) -> int:
    from scapy.config import conf

    return int(conf.l2types.layer2num.get(type(pkt), 1))
