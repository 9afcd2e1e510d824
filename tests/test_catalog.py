"""The socket-error catalog: complete, consistent with this system, and able to name the real
errors this machine raises.

Linux numbers and messages are checked against the running system; macOS and Windows values
come from the systems' documentation (shared/notes/socket-errors.md) and are checked through
recorded exceptions, marked as such.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import struct
import subprocess
import sys
from importlib import resources

import pytest

from netlab.diagnose.catalog import (
    SYSTEMS,
    address_context,
    current_system,
    entry_to_dict,
    load_catalog,
    socket_problem,
)
from netlab.errors import SocketProblem
from tests.conftest import WAIT, netlab_cmd, require

LINUX = sys.platform.startswith("linux")

# Every error the issue names, and the gaierror shapes it lists.
REQUIRED = [
    "EADDRNOTAVAIL", "EADDRINUSE", "EACCES", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET",
    "ECONNABORTED", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAFNOSUPPORT", "EINVAL",
    "ENOTCONN", "ENOTSOCK", "EAI_NONAME", "EAI_AGAIN", "EAI_NODATA",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog()


def test_every_required_error_has_all_fields(catalog) -> None:  # type: ignore[no-untyped-def]
    for name in REQUIRED:
        entry = catalog.get(name)
        assert entry is not None, name
        assert entry.name == name
        assert entry.title and entry.explanation and entry.python
        assert entry.causes and entry.fixes, name
        assert isinstance(entry.lesson, int), name
        assert set(entry.codes) >= {"linux", "macos"}, name
        if name != "EPIPE":  # Windows has no socket EPIPE: 10053/10054 instead (said in text)
            assert "windows" in entry.codes, name


def test_the_numbers_students_paste(catalog) -> None:  # type: ignore[no-untyped-def]
    windows = {
        "EADDRNOTAVAIL": 10049, "EADDRINUSE": 10048, "EACCES": 10013, "ECONNREFUSED": 10061,
        "ETIMEDOUT": 10060, "ECONNRESET": 10054, "ECONNABORTED": 10053, "EINVAL": 10022,
        "ENOTSOCK": 10038, "ENOTCONN": 10057, "EHOSTUNREACH": 10065, "ENETUNREACH": 10051,
        "EAFNOSUPPORT": 10047, "EAI_NONAME": 11001, "EAI_NODATA": 11004,
    }  # fmt: skip
    for name, number in windows.items():
        assert catalog.get(name).codes["windows"].number == number, name
    macos = {"EADDRINUSE": 48, "EADDRNOTAVAIL": 49, "ECONNREFUSED": 61, "EAI_NONAME": 8}
    for name, number in macos.items():
        assert catalog.get(name).codes["macos"].number == number, name
    assert catalog.get("EAI_NONAME").codes["linux"].number == -2
    assert catalog.get("EAI_AGAIN").codes["linux"].number == -3
    assert catalog.get("WSAEADDRNOTAVAIL").name == "EADDRNOTAVAIL"
    assert catalog.get("wsahost_not_found").name == "EAI_NONAME"
    assert catalog.get("EWOULDBLOCK").name == "EAGAIN"
    assert catalog.get("ENOTFOUND").name == "EAI_NONAME"  # Node's name for it


def test_numbers_are_unique_per_system_and_space(catalog) -> None:  # type: ignore[no-untyped-def]
    for system in SYSTEMS:
        seen: dict[tuple[bool, int], str] = {}
        for entry in catalog.entries:
            code = entry.codes.get(system)
            if code is None:
                continue
            key = (entry.is_gai, code.number)
            assert key not in seen, f"{system} {code.number}: {seen.get(key)} and {entry.name}"
            seen[key] = entry.name


def test_data_file_schema() -> None:
    text = resources.files("netlab.diagnose").joinpath("socket_errors.json").read_text("utf-8")
    data = json.loads(text)
    for raw in data["errors"]:
        for key in ("name", "title", "python", "explanation", "causes", "fixes", "lesson"):
            assert key in raw, (raw["name"], key)
        for system in SYSTEMS:
            if system in raw:
                assert isinstance(raw[system]["number"], int)
                assert raw[system]["message"]
        for template in raw.get("situations", {}).values():
            template.format(host="h", port=1, address="h:1")  # only known fields
        for context in raw.get("contexts", {}).values():
            assert set(context) <= {"title", "explanation", "situations", "causes", "fixes"}
            for template in (*context.get("situations", {}).values(),
                             *context.get("fixes", ())):
                template.format(host="h", port=1, address="h:1")
        for phrase in raw.get("phrases", ()):
            assert phrase == phrase.lower()


@pytest.mark.skipif(not LINUX, reason="Linux values are checked on Linux")
def test_linux_codes_match_this_system(catalog) -> None:  # type: ignore[no-untyped-def]
    libc = ctypes.CDLL(None)
    libc.gai_strerror.restype = ctypes.c_char_p
    for entry in catalog.entries:
        code = entry.codes["linux"]
        if entry.is_gai:
            assert getattr(socket, entry.name) == code.number, entry.name
            assert libc.gai_strerror(code.number).decode() == code.message, entry.name
        else:
            names = {entry.name, *entry.aliases}
            assert errno.errorcode[code.number] in names, entry.name
            assert os.strerror(code.number) == code.message, entry.name
    for number, (name, message) in catalog.other_numbers["linux"].items():
        assert errno.errorcode[number] in (name, "EDEADLOCK"), number
        assert os.strerror(number) == message, number


def test_entry_to_dict_is_json_ready(catalog) -> None:  # type: ignore[no-untyped-def]
    data = entry_to_dict(catalog.get("EPIPE"))
    json.dumps(data)
    assert data["codes"]["windows"] is None
    assert data["codes"]["linux"] == {"number": 32, "name": "EPIPE", "message": "Broken pipe"}


# ---------------------------------------------------------------- real errors, this machine


def _raise(call) -> OSError:  # type: ignore[no-untyped-def]
    with pytest.raises(OSError) as info:
        call()
    return info.value


def _real_refusal() -> tuple[OSError, int]:
    """A real ECONNREFUSED: nothing listens on a port just released, so the loopback
    answers the SYN with RST."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as client:
        client.settimeout(5)
        return _raise(lambda: client.connect(("127.0.0.1", port))), port


def test_real_refused_second_bind_and_not_connected(catalog) -> None:  # type: ignore[no-untyped-def]
    refused, _port = _real_refusal()
    assert catalog.for_exception(refused).name == "ECONNREFUSED"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        again = _raise(lambda: sock.bind(("127.0.0.1", 0)))
        assert catalog.for_exception(again).name == "EINVAL"
        not_connected = _raise(sock.getpeername)
        assert catalog.for_exception(not_connected).name == "ENOTCONN"


def test_real_port_in_use(catalog) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen()
        port = first.getsockname()[1]
        exc = _raise(lambda: second.bind(("127.0.0.1", port)))
    assert catalog.for_exception(exc).name == "EADDRINUSE"
    problem = socket_problem(exc, "bind", "127.0.0.1", port)
    assert isinstance(problem, SocketProblem)
    assert problem.code == "EADDRINUSE" and "already in use" in problem.message
    assert "WinError 10048" in problem.message and "48 on macOS" in problem.message


@pytest.mark.skipif(not LINUX, reason="ENOTSOCK from a file descriptor is shown on Linux")
def test_real_not_a_socket_and_reset(catalog) -> None:  # type: ignore[no-untyped-def]
    # A file's descriptor handed to socket(): the kernel says it is not a socket.
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        exc = _raise(lambda: socket.socket(fileno=fd))
        assert catalog.for_exception(exc).name == "ENOTSOCK"
    finally:
        os.close(fd)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname(), timeout=5)
        conn, _ = server.accept()
        # Close with SO_LINGER 0: the kernel sends RST instead of FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        with client:
            reset = _raise(lambda: client.recv(10))
    assert catalog.for_exception(reset).name == "ECONNRESET"


def test_real_broken_pipe(catalog) -> None:  # type: ignore[no-untyped-def]
    left, right = socket.socketpair()
    right.close()
    with left:
        exc = _raise(lambda: left.send(b"x"))
    assert catalog.for_exception(exc).name == "EPIPE"


def test_settimeout_timeout_has_no_errno_but_is_etimedout(catalog) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            client.settimeout(0.05)
            exc = _raise(lambda: client.recv(1))
    assert isinstance(exc, TimeoutError) and exc.errno is None
    assert catalog.for_exception(exc).name == "ETIMEDOUT"


# ---------------------------------------------------------------- recorded: Windows, macOS


def test_recorded_windows_exceptions(catalog) -> None:  # type: ignore[no-untyped-def]
    """RECORDED, not run here: Windows CPython sets winerror, and errno = winerror - 10000
    for 10013 and 10022 (PC/errmap.h). Built by hand on this system."""
    cases = [
        (OSError(10049, "The requested address is not valid ..."), 10049, "EADDRNOTAVAIL"),
        (PermissionError(13, "An attempt was made to access a socket ..."), 10013, "EACCES"),
        (OSError(22, "An invalid argument was supplied"), 10022, "EINVAL"),
        (ConnectionRefusedError(10061, "No connection could be made ..."), 10061, "ECONNREFUSED"),
        (OSError(10038, "An operation was attempted on ..."), 10038, "ENOTSOCK"),
    ]  # fmt: skip
    for exc, winerror, name in cases:
        exc.winerror = winerror  # type: ignore[attr-defined]
        assert catalog.for_exception(exc, system="windows").name == name
    gai = socket.gaierror(11001, "getaddrinfo failed")
    assert catalog.for_exception(gai, system="windows").name == "EAI_NONAME"
    assert catalog.for_exception(socket.gaierror(11004, "x"), system="windows").name == "EAI_NODATA"


def test_recorded_macos_exceptions(catalog) -> None:  # type: ignore[no-untyped-def]
    """RECORDED, not run here: macOS errno values from xnu's bsd/sys/errno.h."""
    cases = [(48, "EADDRINUSE"), (49, "EADDRNOTAVAIL"), (61, "ECONNREFUSED"), (60, "ETIMEDOUT"),
             (54, "ECONNRESET"), (57, "ENOTCONN"), (65, "EHOSTUNREACH")]  # fmt: skip
    for number, name in cases:
        assert catalog.for_exception(OSError(number, "x"), system="macos").name == name
    gai = socket.gaierror(8, "nodename nor servname provided, or not known")
    assert catalog.for_exception(gai, system="macos").name == "EAI_NONAME"
    assert current_system() in SYSTEMS


@pytest.mark.parametrize(("host", "context"), [
    ("fe80::1", "ipv6_link_local_without_zone"),
    ("[FE80::fc:ff:fe00:1]", "ipv6_link_local_without_zone"),
    ("fe80::1%eth0", None),  # with its zone it is fine
    ("::1", "loopback"), ("127.0.0.2", "loopback"), ("LOCALHOST", "loopback"),
    ("fd00::2", None), ("192.0.2.7", None), ("example.org", None), ("", None),
])
def test_which_addresses_make_an_error_read_differently(host: str, context: str | None) -> None:
    assert address_context(host) == context


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6):
            return True
    except OSError:
        return False


def test_invalid_argument_on_a_link_local_address_asks_for_its_interface(catalog) -> None:  # type: ignore[no-untyped-def]
    """EINVAL used to read "this socket is already bound" there: true of a second bind,
    not of fe80::1 without %eth0, which students copy from ip addr or ipconfig."""
    require(_ipv6(), "IPv6 sockets are not available")
    with socket.socket(socket.AF_INET6) as sock:
        error = _raise(lambda: sock.bind(("fe80::1", 0)))  # refused at once, sends nothing
    problem = socket_problem(error, "bind", "fe80::1", 0)
    assert "fe80::1 is link-local" in problem.message and "EINVAL" in problem.message
    assert problem.hint is not None and "fe80::1%eth0 on Linux" in problem.hint
    with socket.socket() as sock:  # the same code elsewhere keeps its usual reading
        sock.bind(("127.0.0.1", 0))
        again = _raise(lambda: sock.bind(("127.0.0.1", 0)))
    assert "already bound" in socket_problem(again, "bind", "127.0.0.1", 0).message


@pytest.mark.parametrize("command", [
    ["serve", "--host", "fe80::1", "--port", "0"],
    ["chat", "--host", "fe80::1", "--nick", "a"],  # connect() refuses it before any packet
    ["diagnose", "--bind", "[fe80::1]:55555"],
])
def test_the_commands_say_a_link_local_address_needs_its_interface(command: list[str]) -> None:
    require(_ipv6(), "IPv6 sockets are not available")
    result = subprocess.run(netlab_cmd(*command), capture_output=True, text=True,
                            timeout=WAIT, stdin=subprocess.DEVNULL)
    assert result.returncode == (1 if command[0] == "diagnose" else 3), result.stderr
    said = result.stdout + result.stderr
    if command[0] == "diagnose":  # fe80::1 is no address here: that one finding says it
        assert "fe80::1 is not an address of this machine" in said
    else:
        assert "link-local" in said and "fe80::1%eth0" in said
    assert "already bound" not in said and "Traceback" not in said


def test_a_refused_connect_to_this_machine_gives_no_advice_about_classmates(catalog) -> None:  # type: ignore[no-untyped-def]
    refused, port = _real_refusal()
    here = socket_problem(refused, "connect", "127.0.0.1", port)
    assert here.hint is not None and "Start the server first" in here.hint
    assert "classmates" not in here.hint and "0.0.0.0" not in here.hint
    # Toward another machine the advice stays: its server may listen on loopback only.
    there = socket_problem(refused, "connect", "192.0.2.7", port)  # (words only: no traffic)
    assert there.hint is not None and "netlab serve --host 0.0.0.0" in there.hint
