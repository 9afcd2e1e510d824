"""`netlab diagnose` with no option: this machine's interfaces and the address for classmates."""

from __future__ import annotations

import socket

from netlab.diagnose.checks import (
    DEFAULT_PORT,
    System,
)
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.netinfo import (
    IfAddress,
    Interface,
    lan_candidates,
    port_verdict,
)


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
