"""Parse what a student types as HOST:PORT: IPv4, [IPv6], host names, ':PORT' for bind.

Pure: no lookups. A bare IPv6 address needs brackets, because in `::1:55555` nobody can
tell where the address ends (RFC 3986 section 3.2.2 writes IPv6 hosts in brackets for that).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from netlab.errors import UsageError

_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)
EXAMPLES = "for example 192.168.1.5:55555, [::1]:55555 or localhost:55555"


@dataclass(frozen=True)
class HostPort:
    host: str  # an IP literal without brackets, or a name
    port: int

    @property
    def is_ip(self) -> bool:
        return ip_or_none(self.host) is not None

    @property
    def is_wildcard(self) -> bool:
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None


def parse_port(text: str, *, allow_zero: bool) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?\d+", text):  # (-1 is a number, out of range: said below)
        raise UsageError(f"the port {text!r} is not a number", f"give a port, {EXAMPLES}")
    port = int(text)
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise UsageError(
            f"port {port} is outside {low}-65535",
            "TCP ports are 16-bit numbers" + ("; 0 means 'any free port'" if allow_zero else ""),
        )
    return port


def parse_host_port(
    text: str, *, for_bind: bool = False, default_port: int | None = None
) -> HostPort:
    """'192.168.1.5:55555', '[::1]:55555', 'localhost:80'; for bind also ':55555' and '*:80'.

    With default_port, a host alone ('127.0.0.1', '::1') is accepted with that port.
    Raises UsageError (exit 2) with a hint for anything else.
    """
    raw = text.strip()
    if not raw:
        raise UsageError("no HOST:PORT given", EXAMPLES)
    if "://" in raw:
        raise UsageError(f"{raw!r} is a URL; give only HOST:PORT", EXAMPLES)
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise UsageError(f"{raw!r}: missing ']' after the IPv6 address", EXAMPLES)
        host, rest = raw[1:close], raw[close + 1 :]
        if ip_or_none(host) is None or ":" not in host:
            raise UsageError(f"{host!r} in brackets is not an IPv6 address", EXAMPLES)
        if not rest and default_port is not None:
            return HostPort(host, default_port)
        if not rest.startswith(":") or not rest[1:]:
            raise UsageError(f"{raw!r} has no port after the address", EXAMPLES)
        return HostPort(host, parse_port(rest[1:], allow_zero=for_bind))
    if raw.count(":") > 1:
        if ip_or_none(raw) is not None and default_port is not None:
            return HostPort(raw, default_port)
        if ip_or_none(raw) is not None:
            raise UsageError(f"{raw!r} is an IPv6 address without a port", EXAMPLES)
        raise UsageError(
            f"{raw!r}: write an IPv6 address in brackets, like [::1]:55555",
            "without brackets nobody can tell where the address ends and the port begins",
        )
    if ":" not in raw:
        if default_port is not None and not raw.isdigit():
            return parse_host_port(f"{raw}:{default_port}", for_bind=for_bind)
        if raw.isdigit():
            raise UsageError(f"{raw!r} has no host", f"give HOST:PORT, {EXAMPLES}")
        raise UsageError(f"{raw!r} has no port", f"give HOST:PORT, {EXAMPLES}")
    host, port_text = raw.rsplit(":", 1)
    host = host.strip()  # '127.0.0.1 : 55555', as pasted
    port = parse_port(port_text, allow_zero=for_bind)
    if host in ("", "*"):
        if not for_bind:
            raise UsageError(f"{raw!r} has no host to connect to", EXAMPLES)
        return HostPort("0.0.0.0", port)  # ':80' and '*:80' mean every interface (Go, nginx)
    if ip_or_none(host) is not None:
        return HostPort(host, port)
    if re.fullmatch(r"[\d.]+", host):
        raise UsageError(
            f"{host!r} is not a valid IPv4 address", "four numbers 0-255, like 192.168.1.5"
        )
    if not _NAME.match(host):
        raise UsageError(f"{host!r} is not a valid host name", EXAMPLES)
    return HostPort(host, port)
