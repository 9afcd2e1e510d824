"""This machine's network interfaces, from psutil (imported lazily: it costs start-up time)."""

from __future__ import annotations

import ipaddress
import socket


def lan_addresses(ipv6: bool = False) -> list[tuple[str, str]]:
    """(interface, address) pairs classmates could reach: no loopback, no link-local."""
    import psutil

    found = []
    for name, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family == socket.AF_INET or (ipv6 and addr.family == socket.AF_INET6):
                text = addr.address.split("%")[0]
                try:
                    ip = ipaddress.ip_address(text)
                except ValueError:
                    continue
                if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                    continue
                found.append((name, text))
    # IPv4 first: it is what students type.
    found.sort(key=lambda item: (":" in item[1], item[0]))
    return found
