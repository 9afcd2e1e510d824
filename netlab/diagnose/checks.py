"""What the diagnoses share: the system they ask, and the wording of common findings.

The diagnoses ask a system object (probes.LiveSystem, or a recorded one in tests) for facts
and real socket outcomes, and explain them from the one catalog.
"""

from __future__ import annotations

import socket
from typing import Protocol

from netlab.diagnose.catalog import ErrorEntry, load_catalog
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.hostport import HostPort
from netlab.diagnose.netinfo import (
    Interface,
    PortRules,
    lan_candidates,
)
from netlab.diagnose.probes import BindResult, ConnectResult, Listener, Listeners

DEFAULT_PORT = 55555  # netlab serve's default, shown in advice


class System(Protocol):
    system: str

    def interfaces(self) -> list[Interface]: ...
    def port_rules(self) -> PortRules: ...
    def resolve(self, host: str, port: int, passive: bool = False) -> list[tuple[int, str]]: ...
    def try_bind(self, address: str, port: int, style: str) -> BindResult: ...
    def listeners(self, port: int) -> Listeners: ...
    def route_source(self, address: str, port: int) -> str: ...
    def tcp_connect(
        self, address: str, port: int, timeout: float, read_for: float = 1.0
    ) -> ConnectResult: ...


def entry_for(exc: BaseException, host: str | None = None) -> ErrorEntry | None:
    """The catalog's entry for a failed call, as it reads for a call on `host`."""
    return load_catalog().for_exception(exc, host=host)


def problem_finding(exc: BaseException, title: str, said: str, host: str, port: int) -> Finding:
    """A failed call as a problem finding, explained and fixed from the catalog."""
    entry = entry_for(exc, host)
    if entry is None:
        return Finding("problem", title, f"{said}{error_text(exc)}.", "", code=None)
    return Finding("problem", f"{title}: {entry.title}",
                   f"{said}{error_text(exc)}. {entry.explanation}",
                   entry.fix_text(host, port), code=entry.name)


def addresses_text(interfaces: list[Interface]) -> str:
    parts = []
    for iface in interfaces:
        if iface.addresses:
            shown = ", ".join(a.address for a in iface.addresses)
            parts.append(f"{iface.name}: {shown}" + ("" if iface.up else " (down)"))
    return "; ".join(parts) if parts else "none found"


def good_bind_addresses(interfaces: list[Interface], version: int = 4) -> str:
    # (of the same family: an IPv4 address is no fix for a bind on an IPv6 one)
    lan = next((a for a in lan_candidates(interfaces) if a.version == version), None)
    if version == 6:
        text = "Bind to :: (every interface) or ::1 (this machine only)"
    else:
        text = (
            "Bind to 0.0.0.0 (every interface, so classmates can connect) "
            "or 127.0.0.1 (this machine only)"
        )
    if lan is not None:
        text += f", or {lan.address} (your address on {lan.interface}, which classmates can reach)"
    return text + "."


def error_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return str(exc) or type(exc).__name__


def code_of(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    entry = entry_for(exc)
    return entry.name if entry else None


def owner_text(listener: Listener) -> str:
    if listener.pid is None:
        return "a program of another user"
    return f"{listener.name or 'a program'} (pid {listener.pid})"


def time_wait_note(port: int, count: int, harmless: bool, where: str = "") -> Finding:
    why = (
        "TCP keeps the address of a recently closed connection for up to a minute (TIME_WAIT, "
        "twice the maximum segment lifetime, RFC 9293) so that late packets cannot reach a new "
        "connection. A server that sets SO_REUSEADDR before bind() starts anyway; it never "
        "lets two servers listen on one port."
    )
    if harmless:
        return ok(f"{count} closed connection(s) on port {port} are in TIME_WAIT", why)
    seen = f"{count} connection(s) from an earlier run are in TIME_WAIT. " if count else ""
    return Finding(
        "warning",
        f"a plain tutorial server would fail on {where} with EADDRINUSE; netlab serve would start",
        seen + why,
        "Add `server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)` before bind(), "
        "or wait a minute.",
        code="EADDRINUSE",
        data={"time_wait": count},
    )


def resolve_into(d: Diagnosis, target: HostPort, system: System, passive: bool) -> list[str]:
    if target.is_ip:
        return [target.host]
    try:
        found = system.resolve(target.host, target.port, passive=passive)
    except socket.gaierror as exc:
        d.add(problem_finding(exc, f"the name {target.host} does not resolve",
                              "getaddrinfo() says: ", target.host, target.port))
        return []
    v4 = [a for f, a in found if f == socket.AF_INET]
    v6 = [a for f, a in found if f == socket.AF_INET6]
    parts = []
    if v4:
        parts.append("IPv4 " + ", ".join(v4))
    if v6:
        parts.append("IPv6 " + ", ".join(v6))
    d.add(
        ok(
            f"{target.host} resolves to {'; '.join(parts)}",
            "A program tries these in this order (getaddrinfo's order)." if len(found) > 1 else "",
            addresses=[a for _f, a in found],
        )
    )
    return [a for _f, a in found]
