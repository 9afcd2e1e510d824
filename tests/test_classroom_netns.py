"""The class server seen from "another machine": two network namespaces this test makes,
joined by a veth pair, so the server sees a real second address.

Tokens, allow/deny and the same-machine check are tested with real sockets from that
address; each drill fault is produced for real and `netlab diagnose --connect` (run as a
student would, in the other namespace) must say what the drill catalog says it shows.

Needs root and iproute2 (skipped otherwise, unless NETLAB_REQUIRE_ALL=1). Both veth ends
live inside the test's namespaces; the host's interfaces, routes and firewall are never
touched. The /29 used is first checked against this machine's addresses and routes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netlab.classroom.drills import FAULTS
from tests.conftest import WAIT, netlab_cmd, require
from tests.test_classroom_server import ClassProcess

pytestmark = pytest.mark.root

_ROUTE_TYPES = {"local", "broadcast", "unicast", "multicast", "anycast", "blackhole",
                "unreachable", "prohibit", "throw", "nat"}


@dataclass
class Lan:
    server: str  # namespace of the class server
    student: str  # namespace of the students' laptop (two addresses: .2 and .3)
    prefix: str  # '10.252.X'

    @property
    def server_ip(self) -> str:
        return f"{self.prefix}.1"

    def cmd(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def run(self, ns: str, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.cmd(ns), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def python(self, ns: str, code: str, timeout: float = WAIT) -> object:
        """Run a snippet in a namespace; it prints one JSON value."""
        done = self.run(ns, sys.executable, "-c", textwrap.dedent(code), timeout=timeout)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def diagnose(self, ns: str, target: str, timeout: float = 1.5) -> dict:  # type: ignore[type-arg]
        done = self.run(ns, *netlab_cmd("diagnose", "--connect", target, "--json",
                                        "--timeout", str(timeout)), timeout=WAIT + timeout)
        assert "Traceback" not in done.stderr, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]


def _range_is_free(net: ipaddress.IPv4Network) -> bool:
    """No address of this machine and no route of any table lies in `net`."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            try:
                if ipaddress.ip_address(a.address.split("%")[0]) in net:
                    return False
            except ValueError:
                continue
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, timeout=WAIT, check=True).stdout
    for line in routes.splitlines():
        words = line.split()
        if not words:
            continue
        dest = words[1] if words[0] in _ROUTE_TYPES and len(words) > 1 else words[0]
        if dest == "default":
            continue
        try:
            if ipaddress.ip_network(dest, strict=False).overlaps(net):
                return False
        except ValueError:
            continue
    return True


@pytest.fixture
def lan() -> Iterator[Lan]:
    require(sys.platform.startswith("linux"), "network namespaces are a Linux feature")
    require(hasattr(os, "geteuid") and os.geteuid() == 0, "creating a network namespace needs root")
    require(shutil.which("ip") is not None, "iproute2 (ip) is not installed")
    prefix = None
    for _ in range(20):
        candidate = f"10.252.{secrets.randbelow(250) + 1}"
        if _range_is_free(ipaddress.ip_network(f"{candidate}.0/29")):
            prefix = candidate
            break
    require(prefix is not None, "no free 10.252.x.0/29 range")
    assert prefix is not None
    tag = secrets.token_hex(3)
    ns = Lan(f"nlc-{tag}-s", f"nlc-{tag}-p", prefix)
    try:
        for name in (ns.server, ns.student):
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True,
                           timeout=WAIT)
        steps = [
            (ns.server, "ip", "link", "set", "lo", "up"),
            (ns.student, "ip", "link", "set", "lo", "up"),
            # Created inside the server's namespace, its peer moved straight into the
            # student's: no end ever exists in the host's namespace.
            (ns.server, "ip", "link", "add", "cls0", "type", "veth", "peer", "name", "cls1",
             "netns", ns.student),
            (ns.server, "ip", "addr", "add", f"{prefix}.1/29", "dev", "cls0"),
            (ns.student, "ip", "addr", "add", f"{prefix}.2/29", "dev", "cls1"),
            (ns.student, "ip", "addr", "add", f"{prefix}.3/29", "dev", "cls1"),
            (ns.server, "ip", "link", "set", "cls0", "up"),
            (ns.student, "ip", "link", "set", "cls1", "up"),
        ]
        for where, *args in steps:
            done = ns.run(where, *args)
            assert done.returncode == 0, (args, done.stderr)
        yield ns
    finally:
        for name in (ns.server, ns.student):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=WAIT)


@pytest.fixture
def start_class(tmp_path: Path, lan: Lan) -> Iterator[Callable[..., ClassProcess]]:
    started: list[ClassProcess] = []

    def start(*args: str) -> ClassProcess:
        # The default host: '::' with IPv4 mapped in, as in a real classroom.
        started.append(ClassProcess(tmp_path, *args, host=None, prefix=lan.cmd(lan.server)))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


STUDENT = """
import json, socket
from netlab.classroom.student import prove, submit_drill
SERVER = {server!r}
TARGET = "%s:%d" % SERVER
def join_from(source, nick):
    sock = socket.create_connection(SERVER, timeout=5, source_address=(source, 0))
    data = b""
    while b"\\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"NICK"):
        sock.sendall(nick.encode() + b"\\n")
        while b"Welcome" not in data and b"! " not in data[6:]:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    sock.close()
    return data.decode()
"""


def test_tokens_from_a_real_second_address(lan: Lan,
                                           start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class()
    assert srv.proc.stdout is not None
    srv.expect(lambda line: line.strip() == f"{lan.server_ip}:{srv.port}    (cls0)")
    srv.expect(lambda line: line == f"projector: netlab chat --host {lan.server_ip} "
                                    f"--port {srv.port}")
    server = (lan.server_ip, srv.port)
    result = lan.python(lan.student, STUDENT.format(server=server) + f"""
listening = socket.create_server(("0.0.0.0", 0))      # bound for classmates: lesson 1 done
private = socket.create_server(("127.0.0.1", 0))      # only this machine: refused
print(json.dumps({{
    "nine": prove("9", TARGET, "alice").to_json(),
    "one": prove("1", TARGET, "alice", port=listening.getsockname()[1]).to_json(),
    "one_private": prove("1", TARGET, "alice2", port=private.getsockname()[1]).to_json(),
    "bob": join_from("{lan.prefix}.3", "bob"),
}}))
""")
    assert isinstance(result, dict)
    assert result["nine"]["ok"] and result["one"]["ok"], result
    assert not result["one_private"]["ok"]
    assert "bound to 0.0.0.0 rather than 127.0.0.1" in result["one_private"]["message"]
    assert "*** Welcome, bob!" in result["bob"]
    srv.expect(lambda line: line == f"* alice proved exercise 9 from {lan.prefix}.2")
    # The same machine can't prove a LAN exercise, by loopback or by its own LAN address.
    local = lan.python(lan.server, STUDENT.format(server=server) + f"""
print(json.dumps([prove("9", "127.0.0.1:{srv.port}", "carol").message,
                  prove("9", "{lan.server_ip}:{srv.port}", "dave").message]))
""")
    assert isinstance(local, list)
    assert "connected from 127.0.0.1, the class server's own machine" in local[0]
    assert f"connected from {lan.server_ip}, the class server's own machine" in local[1]
    token = result["nine"]["token"]
    done = subprocess.run(netlab_cmd("class", "verify", token, "--log", str(srv.log_path),
                                     "--nick", "alice", "--json"),
                          capture_output=True, text=True, timeout=WAIT)
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["ok"], data
    assert data["claims"]["address"] == f"{lan.prefix}.2"  # IPv4, though the server is on ::
    # Bob hands in alice's token: not his nickname, not an address he ever used.
    done = subprocess.run(netlab_cmd("class", "verify", token, "--log", str(srv.log_path),
                                     "--nick", "bob", "--json"),
                          capture_output=True, text=True, timeout=WAIT)
    data = json.loads(done.stdout)
    assert done.returncode == 1 and data["signature_ok"] and data["log"]["agrees"]
    assert data["problems"] == ["the token was earned by alice, not bob",
                                f"bob joined from {lan.prefix}.3, never from {lan.prefix}.2"]
    proofs = [(e["nick"], e["exercise"]) for e in srv.events() if e["type"] == "proof"]
    assert proofs == [("alice", "9"), ("alice", "1")]


def test_allow_and_deny_from_a_real_second_address(
        lan: Lan, start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--allow", f"{lan.prefix}.0/29", "--deny", f"{lan.prefix}.3")
    server = (lan.server_ip, srv.port)
    seen = lan.python(lan.student, STUDENT.format(server=server) + f"""
print(json.dumps([join_from("{lan.prefix}.2", "alice"), join_from("{lan.prefix}.3", "bob")]))
""")
    assert isinstance(seen, list)
    assert "*** Welcome, alice!" in seen[0]
    assert seen[1] == f"! not allowed from {lan.prefix}.3 (this class denies {lan.prefix}.3/32)\r\n"
    local = lan.python(lan.server, STUDENT.format(server=("127.0.0.1", srv.port)) + """
print(json.dumps(join_from("127.0.0.1", "carol")))
""")
    assert local == f"! not allowed from 127.0.0.1 (this class admits only {lan.prefix}.0/29)\r\n"
    refused = [(e["address"], e["nick"]) for e in srv.events() if e["type"] == "refused"]
    assert refused == [(f"{lan.prefix}.3", None), ("127.0.0.1", None)]


FAULT_CHECKS = {
    # what a real client sees beyond the connect, in the student's namespace
    "reset-after-join": """
sock = socket.create_connection(SERVER, timeout=5)
sock.sendall(b"zed\\n")
data, error = b"", None
try:
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
except ConnectionResetError as exc:
    error = exc.errno
print(json.dumps({"welcome": b"Welcome, zed!" in data, "reset": error == 104}))
""",
    "slow-broadcast": """
import time
sock = socket.create_connection(SERVER, timeout=5)
sock.sendall(b"zed\\n")
data = b""
while b"*** zed joined" not in data:
    data += sock.recv(4096)
sent = time.monotonic()
sock.sendall(b"ping\\n")
while b"zed: ping" not in data:
    data += sock.recv(4096)
print(json.dumps({"late": time.monotonic() - sent}))
""",
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_drill_fault_is_what_diagnose_says(
        fault: str, lan: Lan, start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class("--fault", fault, "--fault-delay", "1.0")
    where = srv.expect(lambda line: line.startswith("drill round 1: the drill server is at"))
    announced = where.rpartition(" ")[2]
    assert announced.startswith(f"{lan.server_ip}:")
    expected = FAULTS[fault]
    # A student on the other machine runs diagnose: the verdict must match the drill's.
    data = lan.diagnose(lan.student, announced)
    problems = [f for f in data["findings"] if f["status"] == "problem"]
    if expected.diagnose_code is not None:
        assert [p["code"] for p in problems] == [expected.diagnose_code], data
    else:
        assert problems == [], data
        (connected,) = [f for f in data["findings"] if f["title"].startswith("connected")]
        assert connected["data"]["first_line"] == expected.first_line
    # The instructor's machine tells the look-alike refusals apart.
    if fault in ("loopback-only", "wrong-port", "backlog-full"):
        here = lan.diagnose(lan.server, announced, 1.0)
        (problem,) = [f for f in here["findings"] if f["status"] == "problem"]
        port = announced.rpartition(":")[2]
        assert {
            "loopback-only": f"listens on 127.0.0.1:{port} only",
            "wrong-port": f"Nothing on this machine listens on port {port}",
            "backlog-full": "listen backlog",
        }[fault] in problem["explanation"]
    if fault in FAULT_CHECKS:
        seen = lan.python(lan.student, STUDENT.format(server=(lan.server_ip,
                                                              int(announced.rpartition(":")[2])))
                          + FAULT_CHECKS[fault])
        assert isinstance(seen, dict)
        if fault == "reset-after-join":
            assert seen == {"welcome": True, "reset": True}
        else:
            assert 0.8 <= seen["late"] < 5, seen
    # And the class server grades the diagnosis against the fault it really has.
    graded = lan.python(lan.student, STUDENT.format(server=(lan.server_ip, srv.port)) + f"""
print(json.dumps(submit_drill({fault!r}, TARGET, "alice").to_json()))
""")
    assert isinstance(graded, dict) and graded["correct"] is True, graded


SERVER_PROGRAM = ("import socket, sys, time\n"
                  "s = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
                  "print('listening on %s:%s' % (sys.argv[1], sys.argv[2]), flush=True)\n"
                  "time.sleep(60)\n")


def test_netlab_check_proves_exercises_1_and_9_across_the_lan(
        lan: Lan, start_class: Callable[..., ClassProcess]) -> None:
    srv = start_class()
    server = f"{lan.server_ip}:{srv.port}"
    done = lan.run(lan.student, *netlab_cmd("check", "9", "--server", server, "--nick", "erin",
                                            "--json"), timeout=WAIT * 2)
    assert done.returncode == 0, (done.stdout, done.stderr)
    (criterion,) = json.loads(done.stdout)["criteria"]
    token = criterion["detail"].split("token ")[1].split()[0]
    done = lan.run(lan.student, *netlab_cmd(
        "check", "1", "--server", server, "--nick", "erin", "--json", "--",
        sys.executable, "-c", SERVER_PROGRAM, "{host}", "{port}"), timeout=WAIT * 2)
    assert done.returncode == 0, (done.stdout, done.stderr)
    result = json.loads(done.stdout)
    assert [c["passed"] for c in result["criteria"]] == [True, True]
    proofs = {e["exercise"]: e["token"] for e in srv.events() if e["type"] == "proof"}
    assert proofs["9"] == token and set(proofs) == {"1", "9"}
