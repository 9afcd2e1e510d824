"""Pure facts about addresses, interfaces and each system's port rules.

The probes read the live values (psutil, /proc/sys, netsh) and hand them to these functions,
so the rules can be tested for Windows and macOS on a Linux machine.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Interfaces that exist on a laptop but that classmates cannot reach: container bridges,
# VM host adapters, VPNs, Apple's peer-to-peer Wi-Fi. Matched on the lower-cased name.
_VIRTUAL = re.compile(
    r"^(docker|br-|veth|virbr|vmnet|vboxnet|lxc|lxd|cni|flannel|cali|tun|tap|wg|tailscale|zt"
    r"|utun|awdl|llw|anpi|bridge|ap\d|gif|stf|ifb|dummy|vethernet|virtualbox|vmware|hyper-v"
    r"|loopback|isatap|teredo|npcap|bluetooth)"
)
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
WINDOWS_DEFAULT_EPHEMERAL = (49152, 65535)  # Windows Vista and later, RFC 6335's dynamic range
MACOS_DEFAULT_EPHEMERAL = (49152, 65535)
LINUX_DEFAULT_EPHEMERAL = (32768, 60999)


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class IfAddress:
    interface: str
    address: str  # without an IPv6 zone
    netmask: str | None
    version: int  # 4 or 6
    up: bool = True

    @property
    def ip(self) -> IPAddress:
        return ipaddress.ip_address(self.address)

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        if not self.netmask:
            return None
        mask = self.netmask
        if self.version == 6 and ":" in mask:
            # psutil gives IPv6 masks as addresses (ffff:ffff::); ipaddress wants a length.
            try:
                mask = str(bin(int(ipaddress.IPv6Address(mask))).count("1"))
            except ValueError:
                return None
        try:
            return ipaddress.ip_interface(f"{self.address}/{mask}").network
        except ValueError:
            return None

    def with_prefix(self) -> str:
        net = self.network
        return f"{self.address}/{net.prefixlen}" if net is not None else self.address


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool
    addresses: tuple[IfAddress, ...]

    @property
    def virtual(self) -> bool:
        return is_virtual(self.name)


def is_virtual(name: str) -> bool:
    return bool(_VIRTUAL.match(name.lower()))


def all_addresses(interfaces: Iterable[Interface]) -> list[IfAddress]:
    return [a for iface in interfaces for a in iface.addresses]


def find_owner(ip: IPAddress, interfaces: Iterable[Interface]) -> IfAddress | None:
    """The interface address equal to ip, if this machine has it."""
    for addr in all_addresses(interfaces):
        if addr.ip == ip:
            return addr
    return None


def is_local(ip: IPAddress, interfaces: Iterable[Interface], system: str) -> bool:
    """Can a socket on this machine bind ip? (The wildcard always; else an own address.)"""
    if ip.is_unspecified:
        return True
    if find_owner(ip, interfaces) is not None:
        return True
    # Linux routes the whole 127.0.0.0/8 to lo, so 127.0.0.2 binds; macOS has 127.0.0.1 only.
    return system == "linux" and ip.version == 4 and ip.is_loopback


def subnet_of(ip: IPAddress, interfaces: Iterable[Interface]) -> IfAddress | None:
    """The interface address whose subnet contains ip: reachable without a router."""
    best: IfAddress | None = None
    for addr in all_addresses(interfaces):
        net = addr.network
        if net is None or net.version != ip.version or ip not in net:
            continue
        if net.prefixlen == net.max_prefixlen and addr.ip != ip:
            continue  # a /32 host address covers only itself
        if best is None or (best.network is not None and net.prefixlen > best.network.prefixlen):
            best = addr
    return best


def is_rfc1918(ip: IPAddress) -> bool:
    return ip.version == 4 and any(ip in net for net in _RFC1918)


def lan_candidates(interfaces: Iterable[Interface]) -> list[IfAddress]:
    """Addresses classmates might reach, best first: up, not loopback or link-local,
    physical before virtual, private IPv4 (home and school networks) before the rest."""
    found = []
    for iface in interfaces:
        if not iface.up:
            continue
        for addr in iface.addresses:
            ip = addr.ip
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
                continue
            found.append((iface.virtual, addr.version != 4, not is_rfc1918(ip), addr))
    found.sort(key=lambda t: t[:3])
    return [t[3] for t in found]


def classmates_address(interfaces: Iterable[Interface]) -> IfAddress | None:
    candidates = lan_candidates(interfaces)
    return candidates[0] if candidates else None


def describe_address(ip: IPAddress) -> str:
    """A few words on what kind of address this is."""
    if ip.is_unspecified:
        return "the wildcard: every interface of this machine"
    if ip.is_loopback:
        return "loopback: this machine only"
    if ip.is_link_local:
        return "link-local: only the same cable or Wi-Fi, chosen automatically"
    if ip.is_multicast:
        return "a multicast group, not a host"
    if is_rfc1918(ip):
        return "a private LAN address"
    if ip.version == 6 and ip in ipaddress.ip_network("fc00::/7"):
        return "a private (unique local) IPv6 address"
    if ip.is_private:
        return "a reserved address (documentation or special use)"
    return "a public Internet address"


# ----------------------------------------------------------------------- port rules


@dataclass(frozen=True)
class PortRules:
    """This system's rules for binding ports, as read live by the probes."""

    system: str  # linux, macos, windows
    unprivileged_start: int | None = 1024  # None: no privileged ports (Windows)
    unprivileged_source: str = "default"
    privileged_user: bool = False  # root, or CAP_NET_BIND_SERVICE on Linux
    ephemeral: tuple[int, int] | None = None
    ephemeral_source: str = "default"
    excluded: tuple[tuple[int, int, bool], ...] | None = None  # Windows: (start, end, administered)
    excluded_note: str | None = None  # why the excluded ranges could not be read


def excluded_range_for(port: int, rules: PortRules) -> tuple[int, int, bool] | None:
    for start, end, administered in rules.excluded or ():
        if start <= port <= end:
            return (start, end, administered)
    return None


def parse_excludedportrange(text: str) -> list[tuple[int, int, bool]]:
    """Parse `netsh int ipv4 show excludedportrange protocol=tcp` in any display language.

    Every data line is two numbers, maybe followed by '*' (an administered exclusion); the
    headers and the legend are translated, so they are skipped by shape, not by wording.
    """
    ranges = []
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\d{1,5})\s+(\d{1,5})\s*(\*)?\s*", line)
        if m:
            start, end = int(m.group(1)), int(m.group(2))
            if 0 < start <= end <= 65535:
                ranges.append((start, end, bool(m.group(3))))
    return ranges


def parse_port_range(text: str) -> tuple[int, int] | None:
    """'32768\\t60999' (Linux's net.ipv4.ip_local_port_range) -> (32768, 60999)."""
    nums = re.findall(r"\d+", text)
    if len(nums) != 2:
        return None
    low, high = int(nums[0]), int(nums[1])
    return (low, high) if 0 < low <= high <= 65535 else None


def has_cap_net_bind_service(proc_status: str) -> bool:
    """CAP_NET_BIND_SERVICE (bit 10) in the CapEff line of /proc/self/status."""
    m = re.search(r"^CapEff:\s*([0-9a-fA-F]+)\s*$", proc_status, re.MULTILINE)
    return bool(m) and bool(int(m.group(1), 16) & (1 << 10))  # type: ignore[union-attr]


@dataclass(frozen=True)
class PortVerdict:
    """What this system's rule says about a port, before any bind is tried."""

    allowed: bool
    rule: str  # the rule, in one sentence
    detail: str = ""  # why it applies (or does not) to this user and address
    fix: str = ""
    excluded: tuple[int, int, bool] | None = None


def port_verdict(port: int, wildcard: bool, rules: PortRules) -> PortVerdict:
    """Apply the system's low-port rule and (Windows) its excluded ranges to one bind."""
    if port == 0:
        return PortVerdict(True, "the system picks any free port")
    if rules.system == "windows":
        hit = excluded_range_for(port, rules)
        if hit is not None:
            start, end, administered = hit
            who = (
                "an administrator"
                if administered
                else "Hyper-V, WSL2, Docker Desktop or Windows Sandbox"
            )
            return PortVerdict(
                False,
                f"port {port} is inside the excluded port range {start}-{end}, reserved by {who}",
                "Windows refuses a bind there with WinError 10013 (EACCES) although nothing "
                "listens, so `netstat -ano` shows nothing.",
                "Pick a port outside the ranges that "
                "`netsh int ipv4 show excludedportrange protocol=tcp` lists; as administrator, "
                "`net stop winnat` then `net start winnat` often frees Hyper-V's ranges.",
                excluded=hit,
            )
        rule = "Windows has no privileged ports"
        if rules.excluded is None:
            return PortVerdict(
                True, rule, rules.excluded_note or "the excluded port ranges could not be read"
            )
        return PortVerdict(True, rule, f"and port {port} is outside every excluded port range")
    start = rules.unprivileged_start if rules.unprivileged_start is not None else 1024
    if port >= start:
        if start == 0:
            return PortVerdict(
                True,
                "every port is open to every user here (net.ipv4.ip_unprivileged_port_start = 0, "
                "common in containers)",
            )
        return PortVerdict(True, f"ports from {start} up need no special rights here")
    if rules.system == "macos":
        rule = "since macOS 10.14 a normal user may bind ports below 1024 on 0.0.0.0 only"
        if wildcard or rules.privileged_user:
            why = "on the wildcard address" if wildcard else "because this process runs as root"
            return PortVerdict(True, rule, f"allowed {why}")
        return PortVerdict(
            False,
            rule,
            f"binding port {port} on a specific address needs root",
            f"Bind 0.0.0.0:{port}, or use a port from 1024 up such as 55555.",
        )
    setting = f"net.ipv4.ip_unprivileged_port_start = {start}"
    rule = f"ports below {start} need root here ({setting}, {rules.unprivileged_source})"
    if rules.privileged_user:
        return PortVerdict(
            True,
            rule,
            "allowed because this process runs as root or has CAP_NET_BIND_SERVICE; "
            "the same bind as a normal user fails with EACCES",
        )
    return PortVerdict(
        False,
        rule,
        f"port {port} is below {start} and this user is not root",
        "Use a port from 1024 up such as 55555 (or, as an administrator, lower "
        "net.ipv4.ip_unprivileged_port_start).",
    )


def in_range(port: int, span: tuple[int, int] | None) -> bool:
    return span is not None and span[0] <= port <= span[1]
