"""`netlab explain`: real error lines from Python, Node, Java (and Go, Rust, .NET, curl) on
Linux, macOS and Windows, each mapped to the error it means.

The Linux lines of Python are also produced live on this machine (see the end); the macOS
and Windows lines are RECORDED from those systems (shared/notes/socket-errors.md).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab.cli import cli
from netlab.diagnose.catalog import load_catalog
from netlab.diagnose.explain import explain_text
from netlab.diagnose.textclues import fill, find_address, find_operation
from tests.conftest import WAIT, netlab_cmd

# (source, system, pasted line, expected name)
LINES = [
    # Python on Linux
    ("python", "linux", "OSError: [Errno 98] Address already in use", "EADDRINUSE"),
    ("python", "linux", "OSError: [Errno 99] Cannot assign requested address", "EADDRNOTAVAIL"),
    ("python", "linux", "ConnectionRefusedError: [Errno 111] Connection refused", "ECONNREFUSED"),
    ("python", "linux", "TimeoutError: [Errno 110] Connection timed out", "ETIMEDOUT"),
    ("python", "linux", "ConnectionResetError: [Errno 104] Connection reset by peer", "ECONNRESET"),
    ("python", "linux", "ConnectionAbortedError: [Errno 103] Software caused connection abort", "ECONNABORTED"),  # noqa: E501
    ("python", "linux", "BrokenPipeError: [Errno 32] Broken pipe", "EPIPE"),
    ("python", "linux", "OSError: [Errno 113] No route to host", "EHOSTUNREACH"),
    ("python", "linux", "OSError: [Errno 101] Network is unreachable", "ENETUNREACH"),
    ("python", "linux", "OSError: [Errno 97] Address family not supported by protocol", "EAFNOSUPPORT"),  # noqa: E501
    ("python", "linux", "OSError: [Errno 22] Invalid argument", "EINVAL"),
    ("python", "linux", "OSError: [Errno 107] Transport endpoint is not connected", "ENOTCONN"),
    ("python", "linux", "OSError: [Errno 88] Socket operation on non-socket", "ENOTSOCK"),
    ("python", "linux", "PermissionError: [Errno 13] Permission denied", "EACCES"),
    ("python", "linux", "socket.gaierror: [Errno -2] Name or service not known", "EAI_NONAME"),
    ("python", "linux", "socket.gaierror: [Errno -3] Temporary failure in name resolution", "EAI_AGAIN"),  # noqa: E501
    ("python", "linux", "socket.gaierror: [Errno -8] Servname not supported for ai_socktype", "EAI_SERVICE"),  # noqa: E501
    ("python", "linux", "OSError: [Errno 99] error while attempting to bind on address ('::1', 8888, 0, 0): cannot assign requested address", "EADDRNOTAVAIL"),  # noqa: E501
    ("python2", "linux", "socket.error: [Errno 111] Connection refused", "ECONNREFUSED"),
    ("python", "linux", "requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=8000): Max retries exceeded with url: / (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f3b>: Failed to establish a new connection: [Errno 111] Connection refused'))", "ECONNREFUSED"),  # noqa: E501
    # Python on macOS (recorded)
    ("python", "macos", "OSError: [Errno 48] Address already in use", "EADDRINUSE"),
    ("python", "macos", "OSError: [Errno 49] Can't assign requested address", "EADDRNOTAVAIL"),
    ("python", "macos", "ConnectionRefusedError: [Errno 61] Connection refused", "ECONNREFUSED"),
    ("python", "macos", "TimeoutError: [Errno 60] Operation timed out", "ETIMEDOUT"),
    ("python", "macos", "ConnectionResetError: [Errno 54] Connection reset by peer", "ECONNRESET"),
    ("python", "macos", "OSError: [Errno 57] Socket is not connected", "ENOTCONN"),
    ("python", "macos", "OSError: [Errno 65] No route to host", "EHOSTUNREACH"),
    ("python", "macos", "socket.gaierror: [Errno 8] nodename nor servname provided, or not known", "EAI_NONAME"),  # noqa: E501
    # Python on Windows (recorded), English and translated
    ("python", "windows", "OSError: [WinError 10049] The requested address is not valid in its context", "EADDRNOTAVAIL"),  # noqa: E501
    ("python", "windows", "OSError: [WinError 10048] Only one usage of each socket address (protocol/network address/port) is normally permitted", "EADDRINUSE"),  # noqa: E501
    ("python", "windows", "ConnectionRefusedError: [WinError 10061] No connection could be made because the target machine actively refused it", "ECONNREFUSED"),  # noqa: E501
    ("python", "windows", "PermissionError: [WinError 10013] An attempt was made to access a socket in a way forbidden by its access permissions", "EACCES"),  # noqa: E501
    ("python", "windows", "OSError: [WinError 10022] An invalid argument was supplied", "EINVAL"),
    ("python", "windows", "OSError: [WinError 10038] An operation was attempted on something that is not a socket", "ENOTSOCK"),  # noqa: E501
    ("python", "windows", "ConnectionAbortedError: [WinError 10053] An established connection was aborted by the software in your host machine", "ECONNABORTED"),  # noqa: E501
    ("python", "windows", "TimeoutError: [WinError 10060] A connection attempt failed because the connected party did not properly respond after a period of time", "ETIMEDOUT"),  # noqa: E501
    ("python", "windows", "ConnectionResetError(10054, 'An existing connection was forcibly closed by the remote host', None, 10054, None)", "ECONNRESET"),  # noqa: E501
    ("python", "windows", "socket.gaierror: [Errno 11001] getaddrinfo failed", "EAI_NONAME"),
    ("python", "windows", "socket.gaierror: [Errno 11004] getaddrinfo failed", "EAI_NODATA"),
    ("python", "windows-es", "ConnectionRefusedError: [WinError 10061] No se puede establecer una conexión ya que el equipo de destino denegó expresamente dicha conexión", "ECONNREFUSED"),  # noqa: E501
    ("python", "windows-de", "OSError: [WinError 10048] Normalerweise darf jede Socketadresse (Protokoll, Netzwerkadresse oder Anschluss) nur jeweils einmal verwendet werden", "EADDRINUSE"),  # noqa: E501
    ("python", "windows-zh", "OSError: [WinError 10049] 在其上下文中，该请求的地址无效。", "EADDRNOTAVAIL"),  # noqa: E501
    ("python", "windows-zh", "ConnectionResetError: [WinError 10054] 远程主机强迫关闭了一个现有的连接。", "ECONNRESET"),  # noqa: E501
    # Node (libuv names everywhere, numbers per system)
    ("node", "linux", "Error: listen EADDRINUSE: address already in use :::3000", "EADDRINUSE"),
    ("node", "linux", "Error: connect ECONNREFUSED 127.0.0.1:3306", "ECONNREFUSED"),
    ("node", "linux", "Error: getaddrinfo ENOTFOUND foo.invalid", "EAI_NONAME"),
    ("node", "linux", "Error: getaddrinfo EAI_AGAIN db", "EAI_AGAIN"),
    ("node", "linux", "Error: read ECONNRESET", "ECONNRESET"),
    ("node", "linux", "Error: write EPIPE", "EPIPE"),
    ("node", "linux", "Error: listen EACCES: permission denied 0.0.0.0:80", "EACCES"),
    ("node", "macos", "Error: listen EADDRNOTAVAIL: address not available 192.168.1.5:3000", "EADDRNOTAVAIL"),  # noqa: E501
    ("node", "macos", "Error: connect ETIMEDOUT 10.0.0.5:443", "ETIMEDOUT"),
    ("node", "macos", "Error: connect EHOSTUNREACH 192.168.1.20:3000", "EHOSTUNREACH"),
    ("node", "windows", "Error: connect ECONNREFUSED ::1:3000", "ECONNREFUSED"),
    # Java
    ("java", "linux", "java.net.BindException: Address already in use", "EADDRINUSE"),
    ("java", "linux", "java.net.BindException: Cannot assign requested address", "EADDRNOTAVAIL"),
    ("java", "linux", "java.net.ConnectException: Connection refused", "ECONNREFUSED"),
    ("java", "linux", "java.net.UnknownHostException: foo.invalid: Name or service not known", "EAI_NONAME"),  # noqa: E501
    ("java", "linux", "java.net.SocketException: Connection reset", "ECONNRESET"),
    ("java", "linux", "java.net.NoRouteToHostException: No route to host", "EHOSTUNREACH"),
    ("java", "linux", "java.net.SocketTimeoutException: connect timed out", "ETIMEDOUT"),
    ("java", "linux", "java.net.SocketException: Broken pipe", "EPIPE"),
    ("java", "macos", "java.net.BindException: Can't assign requested address", "EADDRNOTAVAIL"),
    ("java", "macos", "java.net.ConnectException: Operation timed out (Connection timed out)", "ETIMEDOUT"),  # noqa: E501
    ("java", "macos", "java.net.UnknownHostException: foo.invalid: nodename nor servname provided, or not known", "EAI_NONAME"),  # noqa: E501
    ("java", "windows", "java.net.BindException: Address already in use: bind", "EADDRINUSE"),
    ("java", "windows", "java.net.BindException: Cannot assign requested address: JVM_Bind", "EADDRNOTAVAIL"),  # noqa: E501
    ("java", "windows", "java.net.ConnectException: Connection refused: connect", "ECONNREFUSED"),
    ("java", "windows", "java.net.ConnectException: Connection timed out: connect", "ETIMEDOUT"),
    ("java", "windows", "java.net.UnknownHostException: No such host is known (foo.invalid)", "EAI_NONAME"),  # noqa: E501
    ("java", "windows", "java.net.SocketException: Software caused connection abort: recv failed", "ECONNABORTED"),  # noqa: E501
    # Go, Rust, .NET, curl
    ("go", "linux", "listen tcp :8080: bind: address already in use", "EADDRINUSE"),
    ("go", "linux", "dial tcp 127.0.0.1:9: connect: connection refused", "ECONNREFUSED"),
    ("go", "linux", "dial tcp: lookup foo.invalid: no such host", "EAI_NONAME"),
    ("go", "linux", "dial tcp 10.0.0.5:80: i/o timeout", "ETIMEDOUT"),
    ("go", "windows", "dial tcp 127.0.0.1:80: connectex: No connection could be made because the target machine actively refused it.", "ECONNREFUSED"),  # noqa: E501
    ("rust", "linux", 'Error: Os { code: 98, kind: AddrInUse, message: "Address already in use" }', "EADDRINUSE"),  # noqa: E501
    ("rust", "macos", "Address already in use (os error 48)", "EADDRINUSE"),
    ("rust", "windows", "Error: No connection could be made because the target machine actively refused it. (os error 10061)", "ECONNREFUSED"),  # noqa: E501
    ("dotnet", "windows", "System.Net.Sockets.SocketException (10048): Only one usage of each socket address (protocol/network address/port) is normally permitted.", "EADDRINUSE"),  # noqa: E501
    ("dotnet", "linux", "System.Net.Sockets.SocketException (111): Connection refused", "ECONNREFUSED"),  # noqa: E501
    ("curl", "any", "curl: (7) Failed to connect to localhost port 8080 after 0 ms: Connection refused", "ECONNREFUSED"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("source", "system", "line", "name"), LINES)
def test_real_error_lines(source: str, system: str, line: str, name: str) -> None:
    result = explain_text(line)
    assert result.best is not None, line
    assert result.best.entry.name == name, (line, [m.entry.name for m in result.matches])
    if "[WinError" in line or "(os error 10" in line or "SocketException (100" in line:
        assert result.best.certainty == "certain"
        assert result.best.systems == ("windows",)


def test_numbers_alone() -> None:
    for text, name in [("10049", "EADDRNOTAVAIL"), ("98", "EADDRINUSE"), ("-2", "EAI_NONAME"),
                       ("10061", "ECONNREFUSED"), ("13", "EACCES"), ("11001", "EAI_NONAME"),
                       ("10013", "EACCES"), ("22", "EINVAL")]:  # fmt: skip
        best = explain_text(text).best
        assert best is not None and best.entry.name == name, text
    assert explain_text("10049").best.certainty == "certain"  # type: ignore[union-attr]
    assert explain_text("13").best.certainty == "certain"  # same meaning everywhere  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("number", "name", "socket_system", "other"),
    [(48, "EADDRINUSE", "macos", "ELNRNG"), (49, "EADDRNOTAVAIL", "macos", "EUNATCH"),
     (61, "ECONNREFUSED", "macos", "ENODATA"), (111, "ECONNREFUSED", "linux", None)],
)  # fmt: skip
def test_a_number_with_different_meanings_says_so(
    number: int, name: str, socket_system: str, other: str | None
) -> None:
    result = explain_text(str(number))
    best = result.best
    assert best is not None and best.entry.name == name
    assert best.certainty == "likely" and "which system" in best.reason
    systems = {m.system: m for m in result.meanings}
    assert systems[socket_system].socket_error and systems[socket_system].name == name
    other_system = "linux" if socket_system == "macos" else "macos"
    assert not systems[other_system].socket_error
    if other:
        assert systems[other_system].name == other


def test_context_picks_the_meaning() -> None:
    # 61 alone is ambiguous; the wording, the exception class or a path decides.
    assert explain_text("[Errno 61] Connection refused").best.certainty == "certain"  # type: ignore[union-attr]
    assert explain_text("ConnectionRefusedError: [Errno 61]").best.certainty == "certain"  # type: ignore[union-attr]
    mac = explain_text('File "/Users/ana/chat.py", line 9\n[Errno 48]')
    assert mac.best.entry.name == "EADDRINUSE" and mac.best.systems == ("macos",)  # type: ignore[union-attr]
    # '[Errno 61] No data available' is Linux's ENODATA: not a socket error at all.
    linux61 = explain_text("OSError: [Errno 61] No data available")
    assert not linux61.recognised and "ENODATA" in linux61.notes[0]


def test_names_in_any_case_and_spelling() -> None:
    for text, name in [("EADDRINUSE", "EADDRINUSE"), ("WSAECONNREFUSED", "ECONNREFUSED"),
                       ("eaddrnotavail", "EADDRNOTAVAIL"), ("EWOULDBLOCK", "EAGAIN"),
                       ("WSAHOST_NOT_FOUND", "EAI_NONAME"), ("EAI_AGAIN", "EAI_AGAIN")]:  # fmt: skip  # noqa: E501
        best = explain_text(text).best
        assert best is not None and best.entry.name == name and best.certainty == "certain"


def test_wording_only_is_likely_with_reason_and_two_alternatives_at_most() -> None:
    result = explain_text("java.net.BindException: Address already in use")
    assert result.best is not None and result.best.certainty == "likely"
    assert result.best.reason == "the wording 'Address already in use' matched, no error number"
    assert 1 <= len(result.matches) <= 3
    assert {m.entry.name for m in result.matches[1:]} <= {"EADDRNOTAVAIL", "EACCES"}


def test_the_number_beats_the_wording() -> None:
    # Translated or wrong wording: the number decides (10061 refused, not 'in use').
    result = explain_text("[WinError 10061] Address already in use")
    assert result.best is not None and result.best.entry.name == "ECONNREFUSED"


def test_not_recognised() -> None:
    for text in (
        "hello world",
        "KeyError: 'nick'",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc3",
    ):
        assert not explain_text(text).recognised, text


def test_whole_tracebacks() -> None:
    python = """Traceback (most recent call last):
  File "/home/ana/server.py", line 5, in <module>
    s.bind(("192.168.1.5", 55555))
OSError: [Errno 99] Cannot assign requested address
"""
    result = explain_text(python)
    assert result.best.entry.name == "EADDRNOTAVAIL"  # type: ignore[union-attr]
    assert (result.operation, result.host, result.port) == ("bind", "192.168.1.5", 55555)
    node_windows = r"""node:events:497
      throw er; // Unhandled 'error' event
      ^

Error: listen EADDRINUSE: address already in use :::3000
    at Server.setupListenHandle [as _listen2] (node:net:1872:16)
    at Object.<anonymous> (C:\Users\ana\app.js:5:8) {
  code: 'EADDRINUSE',
  errno: -4091,
  syscall: 'listen',
  address: '::',
  port: 3000
}"""
    result = explain_text(node_windows)
    assert result.best.entry.name == "EADDRINUSE"  # type: ignore[union-attr]
    assert result.best.systems == ("windows",)  # type: ignore[union-attr]
    assert (result.host, result.port, result.operation) == ("::", 3000, "bind")
    java = """Exception in thread "main" java.net.ConnectException: Connection refused: connect
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat Client.main(Client.java:7)"""
    result = explain_text(java)
    assert result.best.entry.name == "ECONNREFUSED" and result.best.systems == ("windows",)  # type: ignore[union-attr]
    assert (result.host, result.port) == (None, None)  # Client.java:7 is a file and a line
    # Without ": connect" it is Java anywhere ("ConnectException" once read as Go's connectex)
    result = explain_text(java.replace("refused: connect", "refused"))
    assert result.best.entry.name == "ECONNREFUSED" and result.best.systems == ()  # type: ignore[union-attr]


def test_addresses_and_operations_in_text() -> None:
    assert find_address("connect ECONNREFUSED ::1:3306") == ("::1", 3306)
    assert find_address("listen tcp :8080: bind") == ("0.0.0.0", 8080)
    assert find_address("dial tcp [fe80::1]:80: i/o timeout") == ("fe80::1", 80)
    assert find_address("at 10:12:34:56 nothing") == (None, None)
    assert find_address("(/home/ana/app.js:10:5)") == (None, None)
    assert find_address("at Server.main(Server.java:7)") == (None, None)
    assert find_address('File "chat.py:12" then db.example.org:5432') == ("db.example.org", 5432)
    entry = load_catalog().get("EAI_NONAME")
    assert find_operation("anything", entry) == "resolve"
    assert find_operation("Error: read ECONNRESET", None) == "recv"
    template = "`netlab diagnose --bind {address}`"
    assert fill(template, None, None) == "`netlab diagnose --bind HOST:PORT`"
    assert fill("{address}", "::1", 80) == "[::1]:80"


# ---------------------------------------------------------------- live errors of this machine


def _live_errors() -> list[OSError]:
    errors: list[OSError] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as client:
        client.settimeout(WAIT)
        try:
            client.connect(("127.0.0.1", port))
        except OSError as exc:
            errors.append(exc)
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen()
        try:
            second.bind(first.getsockname())
        except OSError as exc:
            errors.append(exc)
        try:
            first.bind(("127.0.0.1", 0))
        except OSError as exc:
            errors.append(exc)
    return errors


def test_this_machines_own_messages_name_the_same_entry() -> None:
    catalog = load_catalog()
    errors = _live_errors()
    assert len(errors) == 3
    for exc in errors:
        text = f"{type(exc).__name__}: {exc}"
        best = explain_text(text).best
        assert best is not None and best.certainty == "certain", text
        assert best.entry.name == catalog.for_exception(exc).name  # type: ignore[union-attr]


# ---------------------------------------------------------------- the command


def test_cli_argument_json_and_exit_codes() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["explain", "--json", "OSError: [Errno 98] Address already in use"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["type"] == "explanation" and data["recognised"] is True
    assert data["error"]["name"] == "EADDRINUSE" and data["certainty"] == "certain"
    assert data["error"]["codes"]["windows"]["number"] == 10048
    unknown = runner.invoke(cli, ["explain", "--json", "hello"])
    assert unknown.exit_code == 1 and json.loads(unknown.stdout)["recognised"] is False
    # A negative number is an argument, not an option.
    neg = runner.invoke(cli, ["explain", "-2"])
    assert neg.exit_code == 0 and "EAI_NONAME" in neg.stdout
    empty = runner.invoke(cli, ["explain"], input="")
    assert empty.exit_code == 2 and "Traceback" not in empty.output


def test_cli_human_output_shows_codes_fixes_and_lesson() -> None:
    result = CliRunner().invoke(cli, ["explain", "10049"])
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("EADDRNOTAVAIL:")
    assert "Errno 99: Cannot assign requested address" in out
    assert "Errno 49: Can't assign requested address" in out
    assert "WinError 10049 WSAEADDRNOTAVAIL" in out
    assert "Fixes" in out and "0.0.0.0" in out and "netlab lesson 1" in out
    ambiguous = CliRunner().invoke(cli, ["explain", "48"]).stdout
    assert ambiguous.startswith("likely EADDRINUSE")
    assert "48 means different things" in ambiguous and "ELNRNG" in ambiguous


def test_piped_traceback_through_a_real_process(tmp_path: Path) -> None:
    """`python app.py 2>&1 | netlab explain`, with a real crash on this machine."""
    app = tmp_path / "app.py"
    app.write_text(
        "import socket\n"
        "server = socket.socket()\n"
        "server.bind(('127.0.0.1', 0))\n"
        "server.bind(('127.0.0.1', 0))  # a second bind on one socket\n"
    )
    crash = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=WAIT)
    assert "Traceback" in crash.stderr
    explained = subprocess.run(
        netlab_cmd("explain", "--json"),
        input=crash.stdout + crash.stderr,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert explained.returncode == 0, explained.stderr
    data = json.loads(explained.stdout)
    assert data["error"]["name"] == "EINVAL" and data["operation"] == "bind"
    assert data["error"]["situation"] == "this socket is already bound; a socket can be bound once"


def test_invalid_argument_on_a_link_local_address_is_read_as_a_missing_zone() -> None:
    e = explain_text("sock.bind(('fe80::1', 55555)) OSError: [Errno 22] Invalid argument")
    lead = e.matches[0].entry
    assert lead.name == "EINVAL" and lead.title.startswith("a link-local IPv6 address")
    assert "fe80::1%eth0" in lead.fix_text("fe80::1", 55555)
    plain = explain_text("sock.bind(('127.0.0.1', 55555)) OSError: [Errno 22] Invalid argument")
    assert "second bind" in plain.matches[0].entry.title  # the usual reading elsewhere
