"""`netlab diagnose` inside network namespaces this test creates: a DNS failure with a
resolver that points at loopback (never the machine's own resolver), a real timeout and a
real 'no route' across a veth link, and 'refused: the server listens on 127.0.0.1 only'.

Needs root and iproute2. Everything runs inside the namespace (`ip netns exec`), which is
deleted in a finally, with its /etc/netns/<name> files. The host's interfaces, routes,
firewall and resolver are never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import WAIT, netlab_cmd, require

pytestmark = pytest.mark.root


@dataclass
class Netns:
    name: str
    prefix: str  # '10.253.X' of this namespace's private /29 link

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )

    def netlab_json(self, *args: str, timeout: float = WAIT) -> tuple[int, dict]:  # type: ignore[type-arg]
        done = self.run(*netlab_cmd(*args, "--json"), timeout=timeout)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=WAIT)


def _host_uses(prefix: str) -> bool:
    import psutil

    return any(
        a.address.startswith(prefix + ".")
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
    )


@pytest.fixture
def netns() -> Iterator[Netns]:
    require(sys.platform.startswith("linux"), "network namespaces are a Linux feature")
    require(hasattr(os, "geteuid") and os.geteuid() == 0, "creating a network namespace needs root")
    require(shutil.which("ip") is not None, "iproute2 (ip) is not installed")
    # nscd would answer name lookups from the host's resolver, bypassing the namespace's.
    require(not Path("/var/run/nscd/socket").exists(), "nscd is running")
    name = f"nl-{secrets.token_hex(4)}"
    tries = (f"10.253.{secrets.randbelow(250) + 1}" for _ in range(20))
    prefix = next((p for p in tries if not _host_uses(p)), None)
    require(prefix is not None, "no free 10.253.x.0/29 range")
    assert prefix is not None
    etc = Path("/etc/netns") / name
    try:
        _ip("netns", "add", name)
        ns = Netns(name, prefix)
        # Files here are bind-mounted over /etc inside `ip netns exec` only: a resolver on
        # loopback where nothing listens, and DNS only (no mdns, no systemd-resolved).
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (etc / "nsswitch.conf").write_text("hosts: files dns\n")
        for args in (
            ["link", "set", "lo", "up"],
            # A veth pair with both ends inside the namespace: a link to nowhere.
            ["link", "add", "nla", "type", "veth", "peer", "name", "nlb"],
            ["link", "set", "nla", "up"],
            ["link", "set", "nlb", "up"],
            ["addr", "add", f"{prefix}.1/29", "dev", "nla"],
            # .2 'answers' ARP (a permanent entry) but nothing there replies: timeouts.
            ["neigh", "add", f"{prefix}.2", "lladdr", "02:00:00:00:00:02", "dev", "nla",
             "nud", "permanent"],
        ):  # fmt: skip
            done = ns.run("ip", *args)
            assert done.returncode == 0, (args, done.stderr)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=WAIT)
        shutil.rmtree(etc, ignore_errors=True)


def test_dns_failure_for_an_invalid_name(netns: Netns) -> None:
    # The real error first, as a student's program would get it inside this namespace.
    probe = netns.run(
        sys.executable,
        "-c",
        "import socket, json\n"
        "try:\n"
        "    socket.getaddrinfo('nothing-here.invalid', 80)\n"
        "except socket.gaierror as exc:\n"
        "    print(json.dumps([exc.errno, str(exc)]))\n",
    )
    number, text = json.loads(probe.stdout)
    assert number in (-2, -3), text  # EAI_NONAME or EAI_AGAIN: both are honest answers
    code, data = netns.netlab_json("diagnose", "--connect", "nothing-here.invalid:80")
    assert code == 1
    (problem,) = [f for f in data["findings"] if f["status"] == "problem"]
    assert problem["code"] in ("EAI_NONAME", "EAI_AGAIN")
    assert problem["code"] == {-2: "EAI_NONAME", -3: "EAI_AGAIN"}[number]
    assert "nothing-here.invalid does not resolve" in problem["title"]
    # And explain reads the same message the same way.
    code, explained = netns.netlab_json("explain", f"socket.gaierror: {text}")
    assert code == 0 and explained["error"]["name"] == problem["code"]


def test_timeout_across_a_link(netns: Netns) -> None:
    code, data = netns.netlab_json(
        "diagnose", "--connect", f"{netns.prefix}.2:80", "--timeout", "0.5"
    )
    assert code == 1
    path = data["findings"][0]
    assert f"local subnet {netns.prefix}.0/29 (nla)" in path["title"]
    (problem,) = [f for f in data["findings"] if f["status"] == "problem"]
    assert problem["code"] == "ETIMEDOUT" and "firewall" in problem["explanation"]


def test_no_route_when_nobody_answers_arp(netns: Netns) -> None:
    # .3 has no ARP entry and no host: Linux gives up after about 3 s with EHOSTUNREACH.
    code, data = netns.netlab_json(
        "diagnose", "--connect", f"{netns.prefix}.3:80", "--timeout", "8", timeout=20
    )
    assert code == 1, json.dumps(data["findings"])
    (problem,) = [f for f in data["findings"] if f["status"] == "problem"]
    assert problem["code"] == "EHOSTUNREACH", problem


def test_refused_because_the_server_listens_on_loopback_only(netns: Netns) -> None:
    server = subprocess.Popen(
        netns.cmd(
            sys.executable,
            "-c",
            "import socket, sys\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True)\n"
            "sys.stdin.read()\n",
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert select.select([server.stdout], [], [], WAIT)[0], "listener did not start"
        port = int(server.stdout.readline())
        code, data = netns.netlab_json("diagnose", "--connect", f"{netns.prefix}.1:{port}")
        assert code == 1
        (problem,) = [f for f in data["findings"] if f["status"] == "problem"]
        assert problem["code"] == "ECONNREFUSED"
        assert f"listens on 127.0.0.1:{port} only" in problem["explanation"]
        assert "0.0.0.0" in problem["explanation"]
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(WAIT)


def test_localhost_from_the_hosts_file_then_refused(netns: Netns) -> None:
    # Names resolve only through this namespace's files and its dead loopback resolver.
    code, data = netns.netlab_json("diagnose", "--connect", "localhost:9")
    assert code == 1
    assert data["findings"][0]["title"].startswith("localhost resolves to")
    assert "127.0.0.1" in data["findings"][0]["title"]
    assert {f["code"] for f in data["findings"] if f["status"] == "problem"} == {"ECONNREFUSED"}
