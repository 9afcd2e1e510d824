"""`netlab diagnose --bind` and `--port`: could a server bind here, and who holds the port?"""

from __future__ import annotations

from netlab.diagnose.catalog import format_address, load_catalog
from netlab.diagnose.checks import (
    System,
    addresses_text,
    code_of,
    entry_for,
    error_text,
    good_bind_addresses,
    owner_text,
    resolve_into,
    time_wait_note,
)
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.hostport import HostPort
from netlab.diagnose.netinfo import (
    Interface,
    all_addresses,
    classmates_address,
    describe_address,
    find_owner,
    in_range,
    is_local,
    parse_ip,
    port_verdict,
)
from netlab.diagnose.probes import BindResult, Listener, Listeners, owner_command


def diagnose_bind(target: HostPort, system: System) -> Diagnosis:
    d = Diagnosis("bind", str(target))
    interfaces = system.interfaces()
    addresses = resolve_into(d, target, system, passive=True)
    if not addresses:
        return d
    rules = system.port_rules()
    address = addresses[0]
    ip = parse_ip(address)
    assert ip is not None  # getaddrinfo returns literals
    local = is_local(ip, interfaces, system.system)
    plain = system.try_bind(address, target.port, "plain")
    netlab = system.try_bind(address, target.port, "netlab")
    bind_codes = {code_of(r.error) for r in (plain, netlab) if r.error is not None}

    if local:
        d.add(_local_finding(ip, address, interfaces, system.system))
    else:
        seen = " ".join(f"bind() says: {error_text(r.error)}." for r in (plain,) if r.error)
        entry = load_catalog().get("EADDRNOTAVAIL")
        d.add(
            Finding(
                "problem",
                f"{address} is not an address of this machine",
                f"{entry.explanation if entry else ''} {seen} This machine's addresses: "
                f"{addresses_text(interfaces)}. This is EADDRNOTAVAIL "
                f"({entry.codes_text() if entry else 'WinError 10049'}).".strip(),
                good_bind_addresses(interfaces, ip.version),
                code="EADDRNOTAVAIL",
                data={"addresses": [a.address for a in all_addresses(interfaces)]},
            )
        )
    verdict = port_verdict(target.port, ip.is_unspecified, rules)
    if verdict.allowed:
        d.add(ok(f"port {target.port}: {verdict.rule}", verdict.detail))
    else:
        seen = (
            f" bind() says: {error_text(plain.error)}." if code_of(plain.error) == "EACCES" else ""
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
    if not local:  # whatever bind() said (EINVAL for fe80::1%lo): not this machine's address
        explained.update({"EADDRNOTAVAIL", code_of(plain.error), code_of(netlab.error)})
    if not verdict.allowed:
        explained.add("EACCES")
    listeners = system.listeners(target.port) if target.port else Listeners()
    for finding in _bind_outcome(address, target.port, plain, netlab, listeners, explained, system):
        d.add(finding)
    if not bind_codes and listeners.time_wait:
        d.add(time_wait_note(target.port, listeners.time_wait, harmless=True))
    return d


def _local_finding(ip: object, address: str, interfaces: list[Interface], system: str) -> Finding:
    parsed = parse_ip(address)
    assert parsed is not None
    if parsed.is_unspecified:
        lan = classmates_address(interfaces)
        reach = f" Classmates connect to {lan.address} ({lan.interface})." if lan else ""
        return ok(
            f"{address} is the wildcard address: the server accepts connections on every interface",
            f"This machine's addresses: {addresses_text(interfaces)}.{reach}",
        )
    owner = find_owner(parsed, interfaces)
    if owner is None:  # Linux: anything in 127.0.0.0/8
        return ok(
            f"{address} is loopback: this machine only",
            "Linux gives all of 127.0.0.0/8 to the loopback interface (macOS only 127.0.0.1). "
            f"This machine's addresses: {addresses_text(interfaces)}.",
        )
    kind = describe_address(parsed)
    extra = "Classmates cannot connect to it. " if parsed.is_loopback else ""
    return ok(
        f"{address} belongs to this machine ({owner.interface}): {kind}",
        f"{extra}This machine's addresses: {addresses_text(interfaces)}.",
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
    plain_code, netlab_code = code_of(plain.error), code_of(netlab.error)
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
                    f"{owner_text(clash[0])} listens on port {port} too",
                    "The bind worked although another server listens on an overlapping "
                    "address (SO_REUSEPORT, or on Windows SO_REUSEADDR): two servers on one "
                    "port share or steal each other's connections.",
                    "Stop the other server or pick another port.",
                    code="EADDRINUSE",
                )
            )
        return out
    if plain_code == "EADDRINUSE" and netlab.ok:
        return [time_wait_note(port, listeners.time_wait, harmless=False, where=where)]
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
        code = code_of(result.error)
        if code in explained:
            continue  # the finding above already names it, with the fix
        entry = entry_for(result.error, address) if result.error else None
        if entry is None:
            out.append(
                Finding("problem", f"bind() on {where} fails for {who}", error_text(result.error))
            )
            continue
        out.append(
            Finding(
                "problem",
                f"bind() on {where} fails for {who}: {entry.title}",
                f"{error_text(result.error)}. {entry.explanation}",
                entry.fix_text(address, port),
                code=entry.name,
            )
        )
    return out


def _overlaps(listener: Listener, address: str) -> bool:
    wild = ("0.0.0.0", "::")
    return listener.address == address or listener.address in wild or address in wild


def _in_use(where: str, port: int, plain: BindResult, listeners: Listeners, system: str) -> Finding:
    entry = load_catalog().get("EADDRINUSE")
    tcp = [li for li in listeners.found if li.protocol == "tcp"]
    owners = [li for li in tcp if li.pid is not None]
    codes = entry.codes_text() if entry else ""
    base = f"bind() says: {error_text(plain.error)} (EADDRINUSE; {codes})."
    if owners:
        names = "; ".join(
            f"{owner_text(li)} on {format_address(li.address, li.port)}" for li in owners
        )
        first = owners[0]
        kill = f"taskkill /PID {first.pid}" if system == "windows" else f"kill {first.pid}"
        return Finding(
            "problem",
            f"port {port} is already in use by {owner_text(first)}",
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
                f"{owner_text(li)} {verb} {format_address(li.address, port)}",
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
        d.add(time_wait_note(port, listeners.time_wait, harmless=True))
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
    elif code_of(plain.error) == "EADDRINUSE" and netlab.ok:
        d.add(time_wait_note(port, listeners.time_wait, harmless=False, where=where))
    elif code_of(netlab.error) == "EADDRINUSE":
        # Taken is an answer here, not a fault: `--port` is often asked to find one's server.
        d.add(
            Finding(
                "warning",
                f"a new server could not bind {where}: the port is in use",
                f"bind() says: {error_text(netlab.error)}.",
                "Stop the program above, or give the new server another port.",
                code="EADDRINUSE",
            )
        )
    elif verdict.allowed:
        error = netlab.error or plain.error
        entry = entry_for(error) if error else None
        d.add(
            Finding(
                "problem",
                f"a new server could not bind {where}" + (f": {entry.title}" if entry else ""),
                f"bind() says: {error_text(error)}. {entry.explanation if entry else ''}",
                entry.fix_text("0.0.0.0", port) if entry else "",
                code=entry.name if entry else None,
            )
        )
    return d
