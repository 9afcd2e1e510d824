"""`netlab diagnose --connect`: name, route, one bounded TCP connect, and what came back."""

from __future__ import annotations

from netlab.diagnose.catalog import format_address, load_catalog
from netlab.diagnose.checks import (
    System,
    entry_for,
    error_text,
    problem_finding,
    resolve_into,
)
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.hostport import HostPort
from netlab.diagnose.netinfo import (
    Interface,
    find_owner,
    parse_ip,
    subnet_of,
)
from netlab.diagnose.probes import ConnectResult


def diagnose_connect(target: HostPort, system: System, timeout: float = 3.0) -> Diagnosis:
    d = Diagnosis("connect", str(target))
    interfaces = system.interfaces()
    addresses = resolve_into(d, target, system, passive=False)
    if not addresses:
        return d
    connected = False
    attempts: list[Finding] = []
    for address in addresses[:4]:
        ip = parse_ip(address)
        assert ip is not None
        if ip.is_unspecified:
            attempts.append(
                Finding(
                    "problem",
                    f"{address} is not a destination",
                    "0.0.0.0 and :: mean 'every interface' when a server binds; as a "
                    "destination Windows refuses them (WinError 10049) and Linux quietly "
                    "uses this machine.",
                    "Connect to 127.0.0.1 for a server on this machine, or to the server's "
                    "LAN address.",
                    code="EADDRNOTAVAIL",
                )
            )
            continue
        try:
            source = system.route_source(address, target.port)
        except OSError as exc:
            attempts.append(problem_finding(exc, f"no route to {address}", "", address,
                                            target.port))
            continue
        attempts.append(_path_finding(ip, address, source, interfaces))
        result = system.tcp_connect(address, target.port, timeout)
        attempts.append(_connect_finding(result, target, interfaces, system, timeout))
        if result.outcome == "connected":
            connected = True
            break
    if connected:
        # The client fell back to a later address: earlier failures cost time, not the link.
        attempts = [
            Finding(
                "warning",
                f.title,
                f.explanation + " The next address worked, so clients that try every "
                "address (create_connection, browsers) still connect, after a delay.",
                f.fix,
                f.code,
                f.data,
            )
            if f.status == "problem"
            else f
            for f in attempts
        ]
    for finding in attempts:
        d.add(finding)
    return d


def _path_finding(ip: object, address: str, source: str, interfaces: list[Interface]) -> Finding:
    parsed = parse_ip(address)
    assert parsed is not None
    if parsed.is_loopback:
        return ok(f"{address} is loopback: this machine", "Packets never leave this machine.")
    own = find_owner(parsed, interfaces)
    if own is not None:
        return ok(
            f"{address} is this machine's own address ({own.interface})",
            "The connection stays inside this machine; classmates use the same address.",
        )
    net = subnet_of(parsed, interfaces)
    if net is not None:
        return ok(
            f"{address} is in the local subnet {net.network} ({net.interface})",
            f"Packets go straight to it, no router in between; this machine sends from {source}.",
            source=source,
        )
    return ok(
        f"{address} is outside every local subnet: packets go through a router",
        f"This machine would send from {source}. Classmates in one room are usually in one "
        "subnet; if you expected that, the two machines may be on different networks "
        "(guest and staff Wi-Fi, a VPN, a hotspot).",
        source=source,
    )


def _connect_finding(
    result: ConnectResult,
    target: HostPort,
    interfaces: list[Interface],
    system: System,
    timeout: float,
) -> Finding:
    where = format_address(result.address, target.port)
    ms = f"{result.elapsed * 1000:.0f} ms"
    if result.outcome == "connected":
        return _connected(result, where, ms)
    entry = entry_for(result.error, result.address) if result.error else None
    if result.outcome == "refused":
        entry = entry or load_catalog().get("ECONNREFUSED")
        detail, fix = _refused_detail(result.address, target.port, interfaces, system)
        return Finding(
            "problem",
            f"connection to {where} refused: nothing listens there",
            f"{error_text(result.error)}. {entry.explanation if entry else ''}{detail}",
            fix or (entry.fix_text(result.address, target.port) if entry else ""),
            code="ECONNREFUSED",
        )
    if result.outcome == "timeout":
        entry = load_catalog().get("ETIMEDOUT")
        parsed = parse_ip(result.address)
        here = parsed is not None and (parsed.is_loopback or find_owner(parsed, interfaces))
        if here:
            explanation = (
                "On this machine nothing can drop packets, so a timeout means a server "
                "listens but does not accept: its queue of waiting connections (the listen "
                "backlog) is full because it stopped calling accept() (busy, stuck, paused)."
            )
            fix = "Look at the server's terminal; restart it if it is stuck."
        else:
            causes = "; ".join(entry.causes[:3]) if entry else ""
            explanation = (
                f"No answer at all within {timeout:g} s: the packets were dropped on the way. "
                f"Common causes: {causes}."
            )
            fix = entry.fix_text(result.address, target.port, None) if entry else ""
        return Finding(
            "problem",
            f"no answer from {where} within {timeout:g} s (timeout)",
            explanation,
            fix,
            code="ETIMEDOUT",
        )
    if entry is None:
        return Finding("problem", f"connect to {where} failed", error_text(result.error))
    return Finding(
        "problem",
        f"connect to {where} failed: {entry.title}",
        f"{error_text(result.error)}. {entry.explanation}",
        entry.fix_text(result.address, target.port),
        code=entry.name,
    )


def _connected(result: ConnectResult, where: str, ms: str) -> Finding:
    line = result.first_line
    data = {"first_line": line, "source": result.source}
    title = f"connected to {where} in {ms} (from {result.source})"
    if line is None:
        return ok(
            title,
            "The server said nothing within a second: it waits for the client to speak "
            "first, so it is not a netlab chat server (which asks for a nickname at once).",
            **data,
        )
    if line.strip() == "NICK":
        return ok(
            title + ": a chat server answered",
            "Its first line is NICK: it asks for a nickname, as netlab serve (and the "
            "tutorial server speaking the same protocol) does.",
            **data,
        )
    if line.startswith("! "):
        return Finding(
            "warning",
            title + ", but the server turned us away",
            f"Its first line: {line!r}.",
            "Try again later, or ask whoever runs the server.",
            data=data,
        )
    return ok(title, f"Its first line: {line[:200]!r} (not a netlab chat server).", **data)


def _refused_detail(address: str, port: int, interfaces: list[Interface],
                    system: System) -> tuple[str, str | None]:
    """What this machine's listeners add to a refusal, and a fix that replaces the
    catalog's when they make it wrong (the server is running: just elsewhere)."""
    parsed = parse_ip(address)
    if parsed is None or not (parsed.is_loopback or find_owner(parsed, interfaces)):
        return "", None
    found = [li for li in system.listeners(port).found if li.protocol == "tcp"]
    if not found:
        return f" Nothing on this machine listens on port {port}: start the server first.", None
    where = ", ".join(format_address(li.address, port) for li in found)
    loopback_only = all((parse_ip(li.address) or parsed).is_loopback for li in found)
    if loopback_only and not parsed.is_loopback:
        return (
            f" A server on this machine listens on {where} only, so connections to {address} "
            "(and from classmates) are refused: start it on 0.0.0.0 "
            "(`netlab serve --host 0.0.0.0`).",
            "Start the server on 0.0.0.0 (`netlab serve --host 0.0.0.0`), or connect to "
            f"{format_address(found[0].address, port)} from this machine.",
        )
    first = format_address(found[0].address, port)
    return (f" Port {port} listens on {where} only, not on {address}.",
            f"The server is running: connect to {first} instead, or start it on "
            f"{address} as well (--host {address}).")
