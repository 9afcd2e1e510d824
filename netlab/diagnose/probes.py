"""Thin I/O: read this machine's interfaces, port rules, listeners, and try real socket calls.

Everything the diagnosis needs from the live system goes through LiveSystem, so tests can
hand the same diagnosis a recorded Windows or macOS system instead. psutil is imported
inside the methods (a test asserts that `import netlab.cli` does not load it).
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.diagnose.catalog import current_system
from netlab.diagnose.netinfo import (
    LINUX_DEFAULT_EPHEMERAL,
    MACOS_DEFAULT_EPHEMERAL,
    WINDOWS_DEFAULT_EPHEMERAL,
    IfAddress,
    Interface,
    PortRules,
    has_cap_net_bind_service,
    parse_excludedportrange,
    parse_ip,
    parse_port_range,
)

NETSH_EXCLUDED = ["netsh", "int", "ipv4", "show", "excludedportrange", "protocol=tcp"]


@dataclass(frozen=True)
class BindResult:
    style: str  # "plain" (a tutorial server) or "netlab" (as netlab serve binds)
    error: OSError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    protocol: str  # tcp or udp
    pid: int | None
    name: str | None = None  # process name, when this user may see it
    status: str = "LISTEN"


@dataclass
class Listeners:
    found: list[Listener] = field(default_factory=list)
    time_wait: int = 0  # connections left over on this local port after a close
    hidden: str | None = None  # why some owners could not be seen


@dataclass(frozen=True)
class ConnectResult:
    outcome: str  # connected, refused, timeout, error
    address: str
    error: OSError | None = None
    elapsed: float = 0.0
    source: str | None = None
    first_line: str | None = None  # what the server said first, if anything


def owner_command(system: str, port: int) -> str:
    """The system command that shows who holds a port (for when we may not look)."""
    if system == "windows":
        return f'netstat -ano | findstr :{port}  (then: tasklist /FI "PID eq <pid>")'
    if system == "macos":
        return f"sudo lsof -nP -iTCP:{port} -sTCP:LISTEN"
    return f"sudo ss -ltnp 'sport = :{port}'"


class LiveSystem:
    """This machine, read live."""

    def __init__(self, system: str | None = None) -> None:
        self.system = system or current_system()

    # ----------------------------------------------------------------- interfaces
    def interfaces(self) -> list[Interface]:
        import psutil

        stats = psutil.net_if_stats()
        out = []
        for name, addrs in psutil.net_if_addrs().items():
            up = stats[name].isup if name in stats else True
            found = []
            for a in addrs:
                if a.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                address = a.address.split("%", 1)[0]
                netmask = a.netmask
                if netmask and a.family == socket.AF_INET6 and "/" in netmask:
                    netmask = netmask.split("/", 1)[1]
                version = 4 if a.family == socket.AF_INET else 6
                if parse_ip(address) is not None:
                    found.append(IfAddress(name, address, netmask, version, up))
            out.append(Interface(name, up, tuple(found)))
        # Loopback first, then by name: stable output for people and tests.
        out.sort(key=lambda i: (not any(a.ip.is_loopback for a in i.addresses), i.name))
        return out

    # ----------------------------------------------------------------- port rules
    def port_rules(self) -> PortRules:
        if self.system == "windows":
            excluded, note = self._excluded_ranges()
            return PortRules(
                "windows",
                unprivileged_start=None,
                ephemeral=WINDOWS_DEFAULT_EPHEMERAL,
                ephemeral_source="Windows default",
                excluded=excluded,
                excluded_note=note,
            )
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        if self.system == "macos":
            return PortRules(
                "macos",
                unprivileged_start=1024,
                unprivileged_source="macOS",
                privileged_user=root,
                ephemeral=self._macos_ephemeral(),
                ephemeral_source="net.inet.ip.portrange.first/last",
            )
        start, source = 1024, "kernel default"
        text = _read("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        if text is not None and text.strip().isdigit():
            # Per network namespace, and often 0 in containers: read it, never assume 1024.
            start, source = int(text.strip()), "read from /proc/sys"
        ephemeral = parse_port_range(_read("/proc/sys/net/ipv4/ip_local_port_range") or "")
        status = _read("/proc/self/status") or ""
        return PortRules(
            "linux",
            unprivileged_start=start,
            unprivileged_source=source,
            privileged_user=root or has_cap_net_bind_service(status),
            ephemeral=ephemeral or LINUX_DEFAULT_EPHEMERAL,
            ephemeral_source="net.ipv4.ip_local_port_range" if ephemeral else "Linux default",
        )

    def _excluded_ranges(self) -> tuple[tuple[tuple[int, int, bool], ...] | None, str | None]:
        # The one command output worth parsing: no library exposes Windows' excluded ranges.
        try:
            done = subprocess.run(
                NETSH_EXCLUDED, capture_output=True, text=True, timeout=10, errors="replace"
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"could not run netsh ({exc})"
        if done.returncode != 0:
            return None, f"netsh failed: {(done.stderr or done.stdout).strip()[:200]}"
        return tuple(parse_excludedportrange(done.stdout)), None

    def _macos_ephemeral(self) -> tuple[int, int]:
        values = []
        for key in ("net.inet.ip.portrange.first", "net.inet.ip.portrange.last"):
            try:
                done = subprocess.run(
                    ["sysctl", "-n", key], capture_output=True, text=True, timeout=5
                )
                values.append(int(done.stdout.strip()))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return MACOS_DEFAULT_EPHEMERAL
        return (values[0], values[1])

    # ----------------------------------------------------------------- names
    def resolve(self, host: str, port: int, passive: bool = False) -> list[tuple[int, str]]:
        """(family, address) for every address of host, in getaddrinfo's order.

        Raises socket.gaierror. IP literals never touch DNS (AI_NUMERICHOST is implied).
        """
        flags = socket.AI_PASSIVE if passive else 0
        if parse_ip(host) is not None:
            flags |= socket.AI_NUMERICHOST
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, flags)
        seen: list[tuple[int, str]] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            item = (int(family), str(sockaddr[0]))
            if item not in seen:
                seen.append(item)
        return seen

    # ----------------------------------------------------------------- bind
    def try_bind(self, address: str, port: int, style: str) -> BindResult:
        """bind() and listen() as a tutorial server would ('plain': no options) or as
        netlab serve does ('netlab'), then close at once."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            return BindResult(style, exc)
        try:
            if style == "netlab":
                if self.system == "windows":
                    # SO_REUSEADDR on Windows lets a second program steal the port;
                    # SO_EXCLUSIVEADDRUSE is what netlab serve sets there.
                    opt = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
                    if opt is not None:
                        sock.setsockopt(socket.SOL_SOCKET, opt, 1)
                else:
                    # POSIX: bind over the TIME_WAIT of an earlier run (RFC 9293 3.6.1).
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sockaddr: tuple[Any, ...] = (address, port)
            if family == socket.AF_INET6:
                sockaddr = (address, port, 0, 0)
            sock.bind(sockaddr)
            sock.listen(1)
            return BindResult(style)
        except OSError as exc:
            return BindResult(style, exc)
        finally:
            sock.close()

    # ----------------------------------------------------------------- listeners
    def listeners(self, port: int) -> Listeners:
        """Who holds this port (TCP listeners, UDP sockets) and its TIME_WAIT leftovers."""
        import psutil

        result = Listeners()
        try:
            conns = psutil.net_connections(kind="inet")
        except psutil.AccessDenied:
            # macOS: the system-wide table needs root; look at each process we may see.
            result.hidden = "this system shows other programs' sockets only to an administrator"
            conns = self._per_process_connections()
        hidden_pids = 0
        for c in conns:
            if not c.laddr or c.laddr.port != port:
                continue
            is_tcp = c.type == socket.SOCK_STREAM
            if is_tcp and c.status == psutil.CONN_TIME_WAIT:
                result.time_wait += 1
                continue
            if is_tcp and c.status != psutil.CONN_LISTEN:
                continue
            if not is_tcp and c.raddr:
                continue
            if c.pid is None:
                hidden_pids += 1
            result.found.append(
                Listener(
                    address=c.laddr.ip,
                    port=c.laddr.port,
                    protocol="tcp" if is_tcp else "udp",
                    pid=c.pid,
                    name=_process_name(c.pid),
                    status="LISTEN" if is_tcp else "BOUND",
                )
            )
        if hidden_pids and result.hidden is None:
            # Linux shows every socket but hides the pid of other users' programs.
            result.hidden = (
                "the port belongs to another user's program, whose pid only root may see"
            )
        result.found.sort(key=lambda item: (item.protocol, item.address))
        return result

    def _per_process_connections(self) -> list[Any]:
        import psutil

        found: list[Any] = []
        for proc in psutil.process_iter(["pid"]):
            try:
                getter = getattr(proc, "net_connections", None) or proc.connections
                for c in getter(kind="inet"):
                    found.append(_with_pid(c, proc.pid))
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return found

    # ----------------------------------------------------------------- connect
    def route_source(self, address: str, port: int) -> str:
        """The local address packets to `address` would leave from, found without sending:
        connect() on a UDP socket only asks the routing table. Raises OSError."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((address, port or 9))
            return str(sock.getsockname()[0])

    def tcp_connect(
        self, address: str, port: int, timeout: float, read_for: float = 1.0
    ) -> ConnectResult:
        """One bounded TCP connect; on success, wait briefly for the server's first line."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        start = time.monotonic()
        try:
            sock.connect((address, port))
        except TimeoutError as exc:  # socket.timeout is an alias since Python 3.10
            sock.close()
            return ConnectResult("timeout", address, exc, time.monotonic() - start)
        except ConnectionRefusedError as exc:
            sock.close()
            return ConnectResult("refused", address, exc, time.monotonic() - start)
        except OSError as exc:
            sock.close()
            outcome = "timeout" if exc.errno == errno.ETIMEDOUT else "error"
            return ConnectResult(outcome, address, exc, time.monotonic() - start)
        elapsed = time.monotonic() - start
        try:
            # connect() with a timeout polls and then reads SO_ERROR; when a failed ARP
            # lookup ends the handshake at that very moment, the error can be lost and
            # connect() looks successful. getpeername() tells: only a connected socket has
            # a peer.
            sock.getpeername()
        except OSError as not_connected:
            pending = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sock.close()
            lost: OSError = not_connected
            if pending:
                lost = OSError(pending, os.strerror(pending))
            elif not_connected.errno == errno.ENOTCONN:
                # The handshake died without a word: the lost error was 'no route' (ARP).
                lost = OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))
            return ConnectResult("error", address, lost, elapsed)
        source = str(sock.getsockname()[0])
        first = None
        try:
            sock.settimeout(read_for)
            data = b""
            deadline = time.monotonic() + read_for
            # A netlab or tutorial chat server sends "NICK" without waiting for us.
            while b"\n" not in data and len(data) < 4096 and time.monotonic() < deadline:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data:
                first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
        except OSError:
            pass
        finally:
            sock.close()
        return ConnectResult("connected", address, None, elapsed, source, first)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    import psutil

    try:
        return str(psutil.Process(pid).name())
    except (psutil.Error, OSError):
        return None


def _with_pid(conn: Any, pid: int) -> Any:
    """psutil's per-process connections have no pid field; give them one."""
    from types import SimpleNamespace

    return SimpleNamespace(
        laddr=conn.laddr, raddr=conn.raddr, status=conn.status, type=conn.type, pid=pid
    )
