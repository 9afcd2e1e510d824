"""`netlab diagnose`: real failures on loopback wherever this OS can produce them; the
Windows and macOS rules through recorded outputs (marked RECORDED).

Traffic goes to 127.0.0.1 only. Binding a documentation address that is not on this
machine sends nothing. Network namespaces (DNS, timeouts across a link) are in
test_diagnose_netns.py.
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab.cli import cli
from netlab.diagnose import diagnosis as dx
from netlab.diagnose.checks import owner_text
from netlab.diagnose.findings import Diagnosis, Finding, ok
from netlab.diagnose.hostport import HostPort, parse_host_port
from netlab.diagnose.netinfo import (
    IfAddress,
    Interface,
    PortRules,
    classmates_address,
    has_cap_net_bind_service,
    is_local,
    lan_candidates,
    parse_excludedportrange,
    parse_ip,
    parse_port_range,
    port_verdict,
    subnet_of,
)
from netlab.diagnose.probes import BindResult, ConnectResult, Listener, Listeners, LiveSystem
from netlab.diagnose.render import render_diagnosis
from netlab.env import Environment
from netlab.errors import UsageError
from tests.conftest import WAIT, ServerProcess, require

LINUX = sys.platform.startswith("linux")


def run_json(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["diagnose", "--json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def codes(data: dict, status: str = "problem") -> list[str | None]:  # type: ignore[type-arg]
    return [f["code"] for f in data["findings"] if f["status"] == status]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- HOST:PORT


@pytest.mark.parametrize(
    ("text", "for_bind", "host", "port"),
    [
        ("192.168.1.5:55555", False, "192.168.1.5", 55555),
        ("[::1]:55555", False, "::1", 55555),
        ("localhost:80", False, "localhost", 80),
        ("name.invalid:1", False, "name.invalid", 1),
        (":55555", True, "0.0.0.0", 55555),
        ("*:80", True, "0.0.0.0", 80),
        ("127.0.0.1", True, "127.0.0.1", 0),  # bind: a host alone means any free port
        ("::1", True, "::1", 0),
        ("[fe80::1%eth0]:9", False, "fe80::1%eth0", 9),
        (" 127.0.0.1 : 55555 ", False, "127.0.0.1", 55555),  # pasted with spaces
    ],
)
def test_parse_host_port(text: str, for_bind: bool, host: str, port: int) -> None:
    parsed = parse_host_port(text, for_bind=for_bind, default_port=0 if for_bind else None)
    assert (parsed.host, parsed.port) == (host, port)


@pytest.mark.parametrize(
    "text",
    ["", "192.168.1.5", "::1:55555", "[::1]", "[::1]55", "1.2.3.4:99999", "1.2.3.4:-1",
     "999.1.1.1:80", "http://example.com:80", "bad_host!:80", ":80", "host:port", "1.2.3.4:0"],
)  # fmt: skip
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_host_port(text)
    assert info.value.exit_code == 2 and info.value.hint


def test_a_negative_port_is_out_of_range_not_a_non_number() -> None:
    with pytest.raises(UsageError) as info:
        parse_host_port("127.0.0.1:-1")
    assert "port -1 is outside 1-65535" in str(info.value)


def test_usage_errors_exit_2_without_traceback() -> None:
    runner = CliRunner()
    for args in (["--bind", "1.2.3.4:99999"], ["--connect", "::1:80"], ["--connect", "x"],
                 ["--bind", "127.0.0.1:1", "--port", "5"]):  # fmt: skip
        result = runner.invoke(cli, ["diagnose", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


# ---------------------------------------------------------------- pure rules


def iface(name: str, *addrs: tuple[str, str], up: bool = True) -> Interface:
    return Interface(
        name,
        up,
        tuple(IfAddress(name, a, m, 6 if ":" in a else 4, up) for a, m in addrs),
    )


LAPTOP = [
    iface("lo", ("127.0.0.1", "255.0.0.0"), ("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
    iface("docker0", ("172.17.0.1", "255.255.0.0")),
    iface("wlan0", ("192.168.1.23", "255.255.255.0"), ("fe80::1", "ffff:ffff:ffff:ffff::")),
    iface("eth0", ("10.0.0.5", "255.255.255.0"), up=False),
]


def test_addresses_classmates_can_reach() -> None:
    best = classmates_address(LAPTOP)
    assert best is not None and (best.interface, best.address) == ("wlan0", "192.168.1.23")
    assert [a.interface for a in lan_candidates(LAPTOP)] == ["wlan0", "docker0"]  # eth0 down
    ip = parse_ip("192.168.1.77")
    assert ip is not None
    net = subnet_of(ip, LAPTOP)
    assert net is not None and str(net.network) == "192.168.1.0/24"
    assert subnet_of(parse_ip("8.8.8.8"), LAPTOP) is None  # type: ignore[arg-type]
    assert LAPTOP[2].addresses[1].with_prefix() == "fe80::1/64"  # psutil's IPv6 mask form


def test_loopback_range_differs_between_linux_and_macos() -> None:
    ip = parse_ip("127.0.0.2")
    assert ip is not None
    assert is_local(ip, LAPTOP, "linux")
    assert not is_local(ip, LAPTOP, "macos")  # only 127.0.0.1 exists on lo0
    assert is_local(parse_ip("0.0.0.0"), LAPTOP, "windows")  # type: ignore[arg-type]


# RECORDED on Windows 11 with Hyper-V and WSL2 (English and German display language).
NETSH_EN = """
Protocol tcp Port Exclusion Ranges

Start Port    End Port
----------    --------
      5357        5357
     50000       50059     *
     55470       55569
     55570       55669

* - Administered port exclusions.

"""
NETSH_DE = """
Protokoll tcp Portausschlussbereiche

Startport    Endport
----------    --------
      1025        1124
     55480       55579

* - Verwaltete Portausschlüsse.
"""


def test_recorded_netsh_excludedportrange_in_two_languages() -> None:
    assert parse_excludedportrange(NETSH_EN) == [
        (5357, 5357, False), (50000, 50059, True), (55470, 55569, False), (55570, 55669, False),
    ]  # fmt: skip
    assert parse_excludedportrange(NETSH_DE) == [(1025, 1124, False), (55480, 55579, False)]
    assert parse_excludedportrange("Der Vorgang ist fehlgeschlagen.") == []


def test_port_rules_of_each_system() -> None:
    windows = PortRules("windows", None, excluded=tuple(parse_excludedportrange(NETSH_EN)))
    verdict = port_verdict(55555, True, windows)
    assert not verdict.allowed and verdict.excluded == (55470, 55569, False)
    assert "10013" in verdict.detail and "netsh" in verdict.fix
    assert port_verdict(80, False, windows).allowed  # no privileged ports on Windows
    mac = PortRules("macos", 1024)
    assert port_verdict(80, True, mac).allowed  # 0.0.0.0:80 works since 10.14
    assert not port_verdict(80, False, mac).allowed  # 127.0.0.1:80 does not
    assert port_verdict(80, False, PortRules("macos", 1024, privileged_user=True)).allowed
    assert not port_verdict(80, True, PortRules("linux", 1024)).allowed
    assert port_verdict(80, True, PortRules("linux", 0)).allowed  # containers
    assert port_verdict(80, True, PortRules("linux", 1024, privileged_user=True)).allowed
    assert port_verdict(0, False, PortRules("linux", 1024)).allowed


def test_small_parsers() -> None:
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    assert parse_port_range("garbage") is None
    assert has_cap_net_bind_service("CapEff:\t0000000000000400\n")
    assert not has_cap_net_bind_service("CapEff:\t0000000000000000\n")
    assert has_cap_net_bind_service("CapEff:\t000001ffffffffff\n")


# ---------------------------------------------------------------- recorded systems


@dataclass
class RecordedSystem:
    """A Windows or macOS machine as recorded: facts and socket outcomes, no I/O."""

    system: str
    rules: PortRules
    ifaces: list[Interface] = field(default_factory=lambda: LAPTOP)
    bind_errors: dict[str, OSError] = field(default_factory=dict)  # style -> error
    held: Listeners = field(default_factory=Listeners)

    def interfaces(self) -> list[Interface]:
        return self.ifaces

    def port_rules(self) -> PortRules:
        return self.rules

    def resolve(self, host: str, port: int, passive: bool = False) -> list[tuple[int, str]]:
        raise AssertionError("no names in these tests")

    def try_bind(self, address: str, port: int, style: str) -> BindResult:
        return BindResult(style, self.bind_errors.get(style))

    def listeners(self, port: int) -> Listeners:
        return self.held

    def route_source(self, address: str, port: int) -> str:
        return "192.168.1.23"

    def tcp_connect(
        self, address: str, port: int, timeout: float, read_for: float = 1.0
    ) -> ConnectResult:
        raise AssertionError("not used")


def _winerror(cls: type[OSError], errno_: int, winerror: int, text: str) -> OSError:
    exc = cls(errno_, text)
    exc.winerror = winerror  # type: ignore[attr-defined]
    return exc


def test_recorded_windows_excluded_range_gives_10013() -> None:
    """RECORDED: Windows 11, port 55555 inside a Hyper-V range, nothing listening."""
    denied = _winerror(PermissionError, 13, 10013, "An attempt was made to access a socket ...")
    system = RecordedSystem(
        "windows",
        PortRules("windows", None, excluded=tuple(parse_excludedportrange(NETSH_EN))),
        bind_errors={"plain": denied, "netlab": denied},
    )
    d = dx.diagnose_bind(HostPort("0.0.0.0", 55555), system)
    problems = d.problems
    assert [f.code for f in problems] == ["EACCES"]  # explained once, with the range
    assert "55470-55569" in problems[0].title and "netstat -ano" in problems[0].explanation
    assert d.exit_code == 1


def test_recorded_windows_port_owner_hidden_names_netstat() -> None:
    """RECORDED: Windows, port held by another user's process; pid not visible."""
    in_use = _winerror(OSError, 10048, 10048, "Only one usage of each socket address ...")
    system = RecordedSystem(
        "windows",
        PortRules("windows", None, excluded=()),
        bind_errors={"plain": in_use, "netlab": in_use},
        held=Listeners(hidden="only an administrator may see this program"),
    )
    d = dx.diagnose_bind(HostPort("0.0.0.0", 55555), system)
    (problem,) = d.problems
    assert problem.code == "EADDRINUSE" and "netstat -ano | findstr :55555" in problem.fix


def test_recorded_macos_low_port_on_a_specific_address() -> None:
    """RECORDED: macOS 14 as a normal user, 127.0.0.1:80 denied, 0.0.0.0:80 allowed."""
    denied = PermissionError(13, "Permission denied")
    system = RecordedSystem(
        "macos", PortRules("macos", 1024), bind_errors={"plain": denied, "netlab": denied}
    )
    d = dx.diagnose_bind(HostPort("127.0.0.1", 80), system)
    assert [f.code for f in d.problems] == ["EACCES"]
    assert "0.0.0.0:80" in d.problems[0].fix
    ok_system = RecordedSystem("macos", PortRules("macos", 1024))
    assert dx.diagnose_bind(HostPort("0.0.0.0", 80), ok_system).exit_code == 0


def test_own_link_local_address_without_its_zone() -> None:
    """Linux, as measured here: bind() on this machine's fe80:: address without %wlan0 is
    EINVAL. It read "a second bind on one socket"; the real cause is the missing zone."""
    einval = OSError(22, "Invalid argument")
    system = RecordedSystem("linux", PortRules("linux", 1024),
                            bind_errors={"plain": einval, "netlab": einval})
    d = dx.diagnose_bind(HostPort("fe80::1", 55555), system)  # wlan0's, in LAPTOP
    (problem,) = d.problems
    assert problem.code == "EINVAL" and "link-local IPv6 address without its interface" in \
        problem.title
    assert "fe80::1%eth0 on Linux" in problem.fix and "second bind" not in problem.explanation


# ---------------------------------------------------------------- real: bind


def _not_local_documentation_address() -> str:
    import psutil

    mine = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
    for net in ("203.0.113", "198.51.100", "192.0.2"):  # RFC 5737, never on the Internet
        for last in (77, 123, 201):
            candidate = f"{net}.{last}"
            if candidate not in mine:
                return candidate
    pytest.skip("every documentation address tried is on this machine")


def test_real_bind_to_an_address_of_another_machine() -> None:
    address = _not_local_documentation_address()
    with socket.socket() as sock, pytest.raises(OSError) as info:
        sock.bind((address, 0))  # sends nothing: the kernel checks its own addresses
    assert info.value.errno == 99 if LINUX else info.value.errno is not None
    code, data = run_json("--bind", f"{address}:55555")
    assert code == 1
    assert codes(data) == ["EADDRNOTAVAIL"]
    finding = next(f for f in data["findings"] if f["code"] == "EADDRNOTAVAIL")
    assert "0.0.0.0" in finding["fix"] and "127.0.0.1" in finding["fix"]
    assert str(info.value) in finding["explanation"]  # the real error, quoted
    assert "127.0.0.1" in finding["data"]["addresses"]


def test_real_bind_to_a_scoped_link_local_address_of_no_interface_here() -> None:
    """fe80::1%lo: bind() says EINVAL, which is the same "not this machine's address"; it
    came as a second problem ("a second bind on one socket"), with an IPv4 fix."""
    require(LINUX, "the loopback is called lo on Linux")
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        require(False, "IPv6 sockets are not available")
    code, data = run_json("--bind", "[fe80::1%lo]:55555")  # sends nothing
    assert code == 1
    assert codes(data) == ["EADDRNOTAVAIL"]
    finding = next(f for f in data["findings"] if f["code"] == "EADDRNOTAVAIL")
    fix = finding["fix"]
    assert "::1" in fix and "0.0.0.0" not in fix and "127.0.0.1" not in fix
    assert not any(a.count(".") == 3 and a in fix for a in finding["data"]["addresses"])


def _listener_process(host: str = "127.0.0.1") -> tuple[subprocess.Popen[str], int]:
    code = (
        "import socket, sys\n"
        f"s = socket.socket(); s.bind(({host!r}, 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    assert ready, "listener did not start"
    return proc, int(proc.stdout.readline())


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(WAIT)


def test_real_port_in_use_names_the_owner() -> None:
    proc, port = _listener_process()
    try:
        code, data = run_json("--bind", f"127.0.0.1:{port}")
        assert code == 1 and codes(data) == ["EADDRINUSE"]
        problem = next(f for f in data["findings"] if f["status"] == "problem")
        owners = problem["data"]["owners"]
        assert owners[0]["pid"] == proc.pid and "python" in (owners[0]["name"] or "")
        assert f"pid {proc.pid}" in problem["title"]
        code, data = run_json("--port", str(port))
        listening = [f for f in data["findings"] if f.get("data", {}).get("pid") == proc.pid]
        assert listening and listening[0]["data"]["address"] == "127.0.0.1"
        assert "loopback only" in listening[0]["explanation"]
        assert "EADDRINUSE" in codes(data, "warning") and code == 0
    finally:
        _stop(proc)


def test_real_time_wait_is_recognised_and_so_reuseaddr_explained() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        conn, _ = server.accept()
        conn.close()  # the server closes first, so its side ends in TIME_WAIT
        client.settimeout(WAIT)
        assert client.recv(1) == b""
        client.close()
    d = dx.diagnose_bind(HostPort("127.0.0.1", port), LiveSystem())
    (warning,) = [f for f in d.findings if f.status == "warning"]
    assert warning.code == "EADDRINUSE" and "SO_REUSEADDR" in warning.fix
    assert warning.data["time_wait"] >= 1 and "TIME_WAIT" in warning.explanation
    assert d.exit_code == 0  # netlab serve would start: a warning, not a problem


def test_real_free_port_binds_both_ways() -> None:
    d = dx.diagnose_bind(HostPort("127.0.0.1", free_port()), LiveSystem())
    assert d.exit_code == 0 and not d.warnings
    assert any("can bind" in f.title for f in d.findings)


def test_real_low_port_as_a_normal_user() -> None:
    require(LINUX and hasattr(os, "fork"), "privileged ports are checked on Linux")
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    require(start > 1, "ip_unprivileged_port_start is 0 or 1: every port is open here")
    import psutil  # loaded before the fork: the child may not be able to read the stdlib

    from netlab.diagnose.catalog import load_catalog

    assert psutil and load_catalog()  # (the catalog too: it is read through importlib)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, then diagnose as 'nobody' would see it
        try:
            os.close(read_fd)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            d = dx.diagnose_bind(HostPort("127.0.0.1", 1), LiveSystem())
            os.write(write_fd, json.dumps(d.to_json()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not select.select([read_fd], [], [], deadline - time.monotonic())[0]:
            break
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    data = json.loads(b"".join(chunks))
    assert codes(data) == ["EACCES"]
    problem = next(f for f in data["findings"] if f["status"] == "problem")
    assert f"ip_unprivileged_port_start = {start}" in problem["title"]
    assert "Permission denied" in problem["explanation"]  # the real bind's answer


# ---------------------------------------------------------------- real: connect


def test_real_refused_on_a_closed_loopback_port() -> None:
    port = free_port()
    code, data = run_json("--connect", f"127.0.0.1:{port}")
    assert code == 1 and codes(data) == ["ECONNREFUSED"]
    problem = next(f for f in data["findings"] if f["status"] == "problem")
    assert f"Nothing on this machine listens on port {port}" in problem["explanation"]


def test_real_refused_next_to_a_server_on_another_loopback_address() -> None:
    """The server runs, on 127.0.0.2: "start the server first" was the wrong fix."""
    require(LINUX, "only Linux gives the loopback all of 127.0.0.0/8")
    with socket.socket() as server:
        server.bind(("127.0.0.2", 0))  # Linux gives the loopback all of 127.0.0.0/8
        server.listen()
        port = server.getsockname()[1]
        code, data = run_json("--connect", f"127.0.0.1:{port}")
    assert code == 1 and codes(data) == ["ECONNREFUSED"]
    problem = next(f for f in data["findings"] if f["status"] == "problem")
    assert f"listens on 127.0.0.2:{port} only, not on 127.0.0.1" in problem["explanation"]
    assert problem["fix"].startswith(f"The server is running: connect to 127.0.0.2:{port}")
    assert "Start the server first" not in problem["fix"]


def test_real_timeout_when_the_accept_queue_is_full() -> None:
    # listen(0) queues one connection; with nobody calling accept(), Linux drops the next
    # SYN, so the next connect gets no answer at all: a real timeout on loopback.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT):
            start = time.monotonic()
            d = dx.diagnose_connect(HostPort("127.0.0.1", port), LiveSystem(), timeout=0.5)
            assert time.monotonic() - start < WAIT
    (problem,) = d.problems
    assert problem.code == "ETIMEDOUT" and "backlog" in problem.explanation


def test_real_connect_to_a_netlab_chat_server(server: ServerProcess) -> None:
    code, data = run_json("--connect", f"127.0.0.1:{server.port}")
    assert code == 0, data
    connected = next(f for f in data["findings"] if "connected" in f["title"])
    assert "chat server answered" in connected["title"]
    assert connected["data"]["first_line"] == "NICK"


def test_real_connect_to_a_silent_server_says_it_is_not_netlab() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        system = LiveSystem()
        result = system.tcp_connect("127.0.0.1", port, timeout=WAIT, read_for=0.2)
        assert result.outcome == "connected" and result.first_line is None
        d = dx.diagnose_connect(HostPort("127.0.0.1", port), system)
    assert d.exit_code == 0
    assert any("not a netlab chat server" in f.explanation for f in d.findings)


# ---------------------------------------------------------------- overview, rendering


def test_overview_json_shape() -> None:
    code, data = run_json()
    assert code == 0 and data["type"] == "diagnosis" and data["kind"] == "overview"
    for finding in data["findings"]:
        assert finding["type"] == "finding"
        assert finding["status"] in ("ok", "warning", "problem")
        assert set(finding) >= {"code", "title", "explanation", "fix"}
    assert any(f["title"].startswith("lo") and "127.0.0.1" in f["title"] for f in data["findings"])


def test_human_output_on_stdout_and_exit_code() -> None:
    result = CliRunner().invoke(cli, ["diagnose", "--connect", f"127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "PROBLEM" in result.stdout and "[ECONNREFUSED]" in result.stdout
    assert "fix:" in result.stdout and result.stdout.rstrip().endswith("1 ok")


def test_diagnosis_exit_code_rule() -> None:
    d = Diagnosis("port", "1")
    d.add(ok("fine"))
    d.add(Finding("warning", "hm"))
    assert d.exit_code == 0
    d.add(Finding("problem", "bad"))
    assert d.exit_code == 1 and d.summary() == "1 problem, 1 warning, 1 ok"


def test_listener_owner_text() -> None:
    assert owner_text(Listener("0.0.0.0", 1, "tcp", None)) == "a program of another user"
    assert owner_text(Listener("0.0.0.0", 1, "tcp", 7, "python3")) == "python3 (pid 7)"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Diagnosis("port", "1", [Finding("problem", "bad", "why", "do this", code="EACCES")])
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = _Terminal()
    render_diagnosis(d, Environment(stdout=terminal, environ={"TERM": "xterm-256color"}))
    assert "\x1b[" in terminal.getvalue() and "bad" in terminal.getvalue()
    for env in (
        Environment(stdout=_Terminal(), environ={"TERM": "xterm", "NO_COLOR": "1"}),
        Environment(stdout=io.StringIO(), environ={"TERM": "xterm"}),
    ):
        render_diagnosis(d, env)
        text = env.stdout.getvalue()  # type: ignore[attr-defined]
        assert "\x1b[" not in text and "PROBLEM bad  [EACCES]" in text
