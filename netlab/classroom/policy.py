"""Who may join the class server: --deny and --allow CIDR rules, deny first. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from netlab.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize_ip(text: str) -> str:
    """'[::ffff:10.0.0.2]' or '::ffff:10.0.0.2' -> '10.0.0.2'; other addresses unchanged.

    A server on '::' with IPV6_V6ONLY off sees IPv4 clients as IPv4-mapped IPv6 addresses
    (RFC 4291 2.5.5.2); people, rules and tokens should see the plain IPv4 address.
    """
    text = text.strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def host_of(peer: str) -> str:
    """The address part of 'host:port' or '[v6]:port', normalized."""
    host = peer.rpartition(":")[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    return normalize_ip(host)


def parse_network(text: str) -> Network:
    """'192.168.1.0/24', '10.0.0.5' (one host), '::1/128'. Host bits are allowed, since
    people type their own address with the mask (192.168.1.23/24 means 192.168.1.0/24)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"{text!r} is not an address range",
                         "give CIDR like 192.168.1.0/24, 10.0.0.0/8 or one address") from None


@dataclass(frozen=True)
class Policy:
    allow: tuple[Network, ...] = field(default_factory=tuple)
    deny: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, allow: tuple[str, ...] | list[str] = (),
              deny: tuple[str, ...] | list[str] = ()) -> Policy:
        return cls(tuple(parse_network(a) for a in allow), tuple(parse_network(d) for d in deny))

    def refusal(self, address: str) -> str | None:
        """None when `address` may join, else the reason sent as `! <reason>`."""
        try:
            ip: Address = ipaddress.ip_address(normalize_ip(address))
        except ValueError:
            return f"not allowed: {address} is not an IP address"
        for net in self.deny:
            if ip.version == net.version and ip in net:
                return f"not allowed from {ip} (this class denies {net})"
        if self.allow and not any(ip.version == n.version and ip in n for n in self.allow):
            shown = ", ".join(str(n) for n in self.allow)
            return f"not allowed from {ip} (this class admits only {shown})"
        return None

    def to_json(self) -> dict[str, list[str]]:
        return {"allow": [str(n) for n in self.allow], "deny": [str(n) for n in self.deny]}
