"""The four diagnoses (--bind, --connect, --port, overview), built from probes as findings.

Each function asks a system object (probes.LiveSystem, or a recorded one in tests) for facts
and real socket outcomes, and explains them from the one catalog.
"""

from __future__ import annotations

import socket
from typing import Protocol

from netlab.diagnose.catalog import ErrorEntry, format_address, load_catalog
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.hostport import HostPort
from netlab.diagnose.netinfo import (
    IfAddress,
    Interface,
    PortRules,
    all_addresses,
    classmates_address,
    describe_address,
    find_owner,
    in_range,
    is_local,
    lan_candidates,
    parse_ip,
    port_verdict,
    subnet_of,
)
from netlab.diagnose.probes import BindResult, ConnectResult, Listener, Listeners, owner_command

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


def _entry(exc: BaseException) -> ErrorEntry | None:
    return load_catalog().for_exception(exc)


def _fill(texts: tuple[str, ...] | list[str], host: str, port: int) -> str:
    where = format_address(host, port)
    out = []
    for text in texts:
        try:
            out.append(text.format(host=host, port=port, address=where))
        except (KeyError, IndexError, ValueError):
            out.append(text)
    return " ".join(out)


def _addresses_text(interfaces: list[Interface]) -> str:
    parts = []
    for iface in interfaces:
        if iface.addresses:
            shown = ", ".join(a.address for a in iface.addresses)
            parts.append(f"{iface.name}: {shown}" + ("" if iface.up else " (down)"))
    return "; ".join(parts) if parts else "none found"


def _good_bind_addresses(interfaces: list[Interface], version: int = 4) -> str:
    lan = classmates_address(interfaces)
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


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return str(exc) or type(exc).__name__


# ----------------------------------------------------------------------- --bind


def diagnose_bind(target: HostPort, system: System) -> Diagnosis:
    d = Diagnosis("bind", str(target))
    interfaces = system.interfaces()
    addresses = _resolve_for(d, target, system, passive=True)
    if not addresses:
        return d
    rules = system.port_rules()
    address = addresses[0]
    ip = parse_ip(address)
    assert ip is not None  # getaddrinfo returns literals
    local = is_local(ip, interfaces, system.system)
    plain = system.try_bind(address, target.port, "plain")
    netlab = system.try_bind(address, target.port, "netlab")
    bind_codes = {_code(r.error) for r in (plain, netlab) if r.error is not None}

    if local:
        d.add(_local_finding(ip, address, interfaces, system.system))
    else:
        seen = " ".join(f"bind() says: {_error_text(r.error)}." for r in (plain,) if r.error)
        entry = load_catalog().get("EADDRNOTAVAIL")
        d.add(
            Finding(
                "problem",
                f"{address} is not an address of this machine",
                f"{entry.explanation if entry else ''} {seen} This machine's addresses: "
                f"{_addresses_text(interfaces)}. This is EADDRNOTAVAIL "
                f"({entry.codes_text() if entry else 'WinError 10049'}).".strip(),
                _good_bind_addresses(interfaces, ip.version),
                code="EADDRNOTAVAIL",
                data={"addresses": [a.address for a in all_addresses(interfaces)]},
            )
        )
    verdict = port_verdict(target.port, ip.is_unspecified, rules)
    if verdict.allowed:
        d.add(ok(f"port {target.port}: {verdict.rule}", verdict.detail))
    else:
        seen = "".join(
            f" bind() says: {_error_text(r.error)}." for r in (plain,) if _code(r.error) == "EACCES"
        )
        d.add(
            Finding(
                "problem",
                f"port {target.port} is not allowed here: {verdict.rule}",
                f"{verdict.detail}.{seen}",
                verdict.fix,
                code="EACCES",
                data={"excluded_range": list(verdict.excluded) if verdict.excluded else None},
            )
        )
    if target.port and in_range(target.port, rules.ephemeral):
        assert rules.ephemeral is not None
        low, high = rules.ephemeral
        d.add(
            ok(
                f"port {target.port} is inside the ephemeral range {low}-{high} "
                f"({rules.ephemeral_source})",
                "The system also lends ports from this range to outgoing connections, so "
                "now and then a client holds it for a moment; a server port outside the "
                "range avoids that.",
            )
        )
    # Already explained above: not one of our addresses, or a port the rule forbids.
    explained = set()
    if not local:
        explained.add("EADDRNOTAVAIL")
    if not verdict.allowed:
        explained.add("EACCES")
    listeners = system.listeners(target.port) if target.port else Listeners()
    for finding in _bind_outcome(address, target.port, plain, netlab, listeners, explained, system):
        d.add(finding)
    if not bind_codes and listeners.time_wait:
        d.add(_time_wait_note(target.port, listeners.time_wait, harmless=True))
    return d


def _code(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    entry = _entry(exc)
    return entry.name if entry else None


def _local_finding(ip: object, address: str, interfaces: list[Interface], system: str) -> Finding:
    parsed = parse_ip(address)
    assert parsed is not None
    if parsed.is_unspecified:
        lan = classmates_address(interfaces)
        reach = f" Classmates connect to {lan.address} ({lan.interface})." if lan else ""
        return ok(
            f"{address} is the wildcard address: the server accepts connections on every interface",
            f"This machine's addresses: {_addresses_text(interfaces)}.{reach}",
        )
    owner = find_owner(parsed, interfaces)
    if owner is None:  # Linux: anything in 127.0.0.0/8
        return ok(
            f"{address} is loopback: this machine only",
            "Linux gives all of 127.0.0.0/8 to the loopback interface (macOS only 127.0.0.1). "
            f"This machine's addresses: {_addresses_text(interfaces)}.",
        )
    kind = describe_address(parsed)
    extra = "Classmates cannot connect to it. " if parsed.is_loopback else ""
    return ok(
        f"{address} belongs to this machine ({owner.interface}): {kind}",
        f"{extra}This machine's addresses: {_addresses_text(interfaces)}.",
    )


def _bind_outcome(
    address: str,
    port: int,
    plain: BindResult,
    netlab: BindResult,
    listeners: Listeners,
    explained: set[str],
    system: System,
) -> list[Finding]:
    where = format_address(address, port)
    plain_code, netlab_code = _code(plain.error), _code(netlab.error)
    if plain.ok and netlab.ok:
        out = [
            ok(
                f"a server can bind {where} now",
                "Tried twice, as a plain tutorial server (no socket options) and as netlab "
                "serve does; both bind() and listen() worked.",
            )
        ]
        clash = [li for li in listeners.found if li.protocol == "tcp" and _overlaps(li, address)]
        if clash and port:
            out.append(
                Finding(
                    "warning",
                    f"{_owner_text(clash[0])} listens on port {port} too",
                    "The bind worked although another server listens on an overlapping "
                    "address (SO_REUSEPORT, or on Windows SO_REUSEADDR): two servers on one "
                    "port share or steal each other's connections.",
                    "Stop the other server or pick another port.",
                    code="EADDRINUSE",
                )
            )
        return out
    if plain_code == "EADDRINUSE" and netlab.ok:
        return [_time_wait_note(port, listeners.time_wait, harmless=False, where=where)]
    if plain_code == "EADDRINUSE" and netlab_code == "EADDRINUSE":
        return [_in_use(where, port, plain, listeners, system.system)]
    out = []
    if plain_code == netlab_code:
        results = [("a plain server and netlab serve", plain)]
    else:
        results = [("a plain tutorial server", plain), ("netlab serve", netlab)]
    for who, result in results:
        if result.ok:
            out.append(ok(f"{who} can bind {where}"))
            continue
        code = _code(result.error)
        if code in explained:
            continue  # the finding above already names it, with the fix
        entry = _entry(result.error) if result.error else None
        if entry is None:
            out.append(
                Finding("problem", f"bind() on {where} fails for {who}", _error_text(result.error))
            )
            continue
        out.append(
            Finding(
                "problem",
                f"bind() on {where} fails for {who}: {entry.title}",
                f"{_error_text(result.error)}. {entry.explanation}",
                _fill(entry.fixes[:2], address, port),
                code=entry.name,
            )
        )
    return out


def _overlaps(listener: Listener, address: str) -> bool:
    wild = ("0.0.0.0", "::")
    return listener.address == address or listener.address in wild or address in wild


def _owner_text(listener: Listener) -> str:
    if listener.pid is None:
        return "a program of another user"
    return f"{listener.name or 'a program'} (pid {listener.pid})"


def _in_use(where: str, port: int, plain: BindResult, listeners: Listeners, system: str) -> Finding:
    entry = load_catalog().get("EADDRINUSE")
    tcp = [li for li in listeners.found if li.protocol == "tcp"]
    owners = [li for li in tcp if li.pid is not None]
    codes = entry.codes_text() if entry else ""
    base = f"bind() says: {_error_text(plain.error)} (EADDRINUSE; {codes})."
    if owners:
        names = "; ".join(
            f"{_owner_text(li)} on {format_address(li.address, li.port)}" for li in owners
        )
        first = owners[0]
        kill = f"taskkill /PID {first.pid}" if system == "windows" else f"kill {first.pid}"
        return Finding(
            "problem",
            f"port {port} is already in use by {_owner_text(first)}",
            f"{base} Listening: {names}. Often that is your own server from an earlier run, "
            "still alive in another terminal or IDE.",
            f"Stop it (Ctrl-C in its terminal, or `{kill}`), or pick another port "
            "(--port 0 lets the system choose).",
            code="EADDRINUSE",
            data={
                "owners": [{"pid": li.pid, "name": li.name, "address": li.address} for li in owners]
            },
        )
    why = listeners.hidden or "no listener matching this port was visible to this user"
    return Finding(
        "problem",
        f"port {port} is already in use by another program",
        f"{base} Cannot name the owner: {why}.",
        f"See who holds it with `{owner_command(system, port)}`, stop that program, or pick "
        "another port.",
        code="EADDRINUSE",
    )


def _time_wait_note(port: int, count: int, harmless: bool, where: str = "") -> Finding:
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


def _resolve_for(d: Diagnosis, target: HostPort, system: System, passive: bool) -> list[str]:
    if target.is_ip:
        return [target.host]
    try:
        found = system.resolve(target.host, target.port, passive=passive)
    except socket.gaierror as exc:
        entry = _entry(exc)
        d.add(
            Finding(
                "problem",
                f"the name {target.host} does not resolve" + (f": {entry.title}" if entry else ""),
                f"getaddrinfo() says: {_error_text(exc)}. " + (entry.explanation if entry else ""),
                _fill(entry.fixes[:2], target.host, target.port) if entry else "",
                code=entry.name if entry else None,
            )
        )
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


# ----------------------------------------------------------------------- --connect


def diagnose_connect(target: HostPort, system: System, timeout: float = 3.0) -> Diagnosis:
    d = Diagnosis("connect", str(target))
    interfaces = system.interfaces()
    addresses = _resolve_for(d, target, system, passive=False)
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
            entry = _entry(exc)
            attempts.append(
                Finding(
                    "problem",
                    f"no route to {address}" + (f": {entry.title}" if entry else ""),
                    f"{_error_text(exc)}. " + (entry.explanation if entry else ""),
                    _fill(entry.fixes[:2], address, target.port) if entry else "",
                    code=entry.name if entry else None,
                )
            )
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
    entry = _entry(result.error) if result.error else None
    if result.outcome == "refused":
        entry = entry or load_catalog().get("ECONNREFUSED")
        return Finding(
            "problem",
            f"connection to {where} refused: nothing listens there",
            f"{_error_text(result.error)}. {entry.explanation if entry else ''}"
            + _refused_detail(result.address, target.port, interfaces, system),
            _fill(entry.fixes[:2], result.address, target.port) if entry else "",
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
            fix = _fill(entry.fixes, result.address, target.port) if entry else ""
        return Finding(
            "problem",
            f"no answer from {where} within {timeout:g} s (timeout)",
            explanation,
            fix,
            code="ETIMEDOUT",
        )
    if entry is None:
        return Finding("problem", f"connect to {where} failed", _error_text(result.error))
    return Finding(
        "problem",
        f"connect to {where} failed: {entry.title}",
        f"{_error_text(result.error)}. {entry.explanation}",
        _fill(entry.fixes[:2], result.address, target.port),
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


def _refused_detail(address: str, port: int, interfaces: list[Interface], system: System) -> str:
    parsed = parse_ip(address)
    if parsed is None or not (parsed.is_loopback or find_owner(parsed, interfaces)):
        return ""
    found = [li for li in system.listeners(port).found if li.protocol == "tcp"]
    if not found:
        return f" Nothing on this machine listens on port {port}: start the server first."
    where = ", ".join(format_address(li.address, port) for li in found)
    loopback_only = all((parse_ip(li.address) or parsed).is_loopback for li in found)
    if loopback_only and not parsed.is_loopback:
        return (
            f" A server on this machine listens on {where} only, so connections to {address} "
            "(and from classmates) are refused: start it on 0.0.0.0 "
            "(`netlab serve --host 0.0.0.0`)."
        )
    return f" Port {port} listens on {where} only, not on {address}."


# ----------------------------------------------------------------------- --port


def diagnose_port(port: int, system: System) -> Diagnosis:
    d = Diagnosis("port", str(port))
    listeners = system.listeners(port)
    if not listeners.found:
        d.add(ok(f"nothing listens on port {port}"))
    for li in listeners.found:
        ip = parse_ip(li.address)
        kind = describe_address(ip) if ip is not None else ""
        reach = ""
        if ip is not None and ip.is_loopback:
            reach = " Classmates are refused: it listens on loopback only."
        elif ip is not None and ip.is_unspecified:
            reach = " Classmates can connect (if the firewall lets them)."
        verb = "listens on" if li.protocol == "tcp" else "has a UDP socket on"
        d.add(
            ok(
                f"{_owner_text(li)} {verb} {format_address(li.address, port)}",
                f"{li.address}: {kind}.{reach}",
                pid=li.pid,
                name=li.name,
                address=li.address,
                protocol=li.protocol,
            )
        )
    if listeners.hidden and (any(li.pid is None for li in listeners.found) or not listeners.found):
        d.add(
            Finding(
                "warning",
                "some owners are hidden from this user",
                f"{listeners.hidden}.",
                f"Run `{owner_command(system.system, port)}`.",
            )
        )
    if listeners.time_wait:
        d.add(_time_wait_note(port, listeners.time_wait, harmless=True))
    rules = system.port_rules()
    verdict = port_verdict(port, True, rules)
    if verdict.allowed:
        d.add(ok(f"port {port}: {verdict.rule}", verdict.detail))
    else:
        d.add(
            Finding(
                "problem",
                f"port {port} is not allowed here: {verdict.rule}",
                verdict.detail,
                verdict.fix,
                code="EACCES",
            )
        )
    plain = system.try_bind("0.0.0.0", port, "plain")
    netlab = system.try_bind("0.0.0.0", port, "netlab")
    where = format_address("0.0.0.0", port)
    if plain.ok and netlab.ok:
        d.add(ok(f"a new server could bind {where}"))
    elif _code(plain.error) == "EADDRINUSE" and netlab.ok:
        d.add(_time_wait_note(port, listeners.time_wait, harmless=False, where=where))
    elif _code(netlab.error) == "EADDRINUSE":
        # Taken is an answer here, not a fault: `--port` is often asked to find one's server.
        d.add(
            Finding(
                "warning",
                f"a new server could not bind {where}: the port is in use",
                f"bind() says: {_error_text(netlab.error)}.",
                "Stop the program above, or give the new server another port.",
                code="EADDRINUSE",
            )
        )
    elif verdict.allowed:
        error = netlab.error or plain.error
        entry = _entry(error) if error else None
        d.add(
            Finding(
                "problem",
                f"a new server could not bind {where}" + (f": {entry.title}" if entry else ""),
                f"bind() says: {_error_text(error)}. {entry.explanation if entry else ''}",
                _fill(entry.fixes[:2], "0.0.0.0", port) if entry else "",
                code=entry.name if entry else None,
            )
        )
    return d


# ----------------------------------------------------------------------- overview


def overview(system: System) -> Diagnosis:
    d = Diagnosis("overview", socket.gethostname())
    interfaces = system.interfaces()
    for iface in interfaces:
        shown = ", ".join(a.with_prefix() for a in iface.addresses) or "no IP address"
        notes = []
        if iface.virtual:
            notes.append("virtual (containers, VMs or VPN): classmates cannot reach it")
        if any(a.ip.is_loopback for a in iface.addresses):
            notes.append("loopback: this machine only")
        d.add(
            ok(
                f"{iface.name} ({'up' if iface.up else 'down'}): {shown}",
                _sentence("; ".join(notes)),
                interface=iface.name,
                up=iface.up,
                addresses=[a.with_prefix() for a in iface.addresses],
            )
        )
    d.add(_classmates(interfaces))
    rules = system.port_rules()
    d.add(ok(f"low ports: {port_verdict(1, False, rules).rule}"))
    if rules.ephemeral:
        low, high = rules.ephemeral
        d.add(ok(f"ephemeral ports: {low}-{high} ({rules.ephemeral_source})"))
    if rules.system == "windows":
        if rules.excluded is None:
            d.add(
                Finding(
                    "warning",
                    "could not read Windows' excluded port ranges",
                    rules.excluded_note or "",
                    "Run `netsh int ipv4 show excludedportrange protocol=tcp` yourself.",
                )
            )
        else:
            spans = ", ".join(f"{a}-{b}" for a, b, _ in rules.excluded) or "none"
            d.add(ok(f"excluded port ranges (WinError 10013 there): {spans}"))
    return d


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "." if text else ""


def _classmates(interfaces: list[Interface]) -> Finding:
    candidates: list[IfAddress] = lan_candidates(interfaces)
    if not candidates:
        return Finding(
            "warning",
            "no address classmates can reach",
            "This machine has only loopback addresses up: it is not on a network.",
            "Connect to the classroom network (the same Wi-Fi as your classmates).",
        )
    best = candidates[0]
    others = [f"{a.address} ({a.interface})" for a in candidates[1:4]]
    more = f" Other addresses: {', '.join(others)}." if others else ""
    return ok(
        f"give classmates {best.address} (on {best.interface})",
        f"Start the server on every interface (`netlab serve --host 0.0.0.0`), then "
        f"classmates run `netlab chat --host {best.address} --port {DEFAULT_PORT}`. "
        f"127.0.0.1 always means the machine it is typed on.{more}",
        address=best.address,
    )
