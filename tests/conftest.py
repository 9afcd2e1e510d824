"""Shared fixtures: an isolated home, the `require` rule, a real `netlab serve` process,
and a line client for talking to it."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netlab.chat.protocol import LineFramer, LineTooLong

PYTHON = sys.executable
WAIT = 10.0  # the longest any single wait in a test may take


def require(condition: bool, reason: str) -> None:
    """Skip when something this OS or user can't provide is missing; with
    NETLAB_REQUIRE_ALL=1 (as CI runs) a missing tool is a failure instead."""
    if condition:
        return
    if os.environ.get("NETLAB_REQUIRE_ALL") == "1":
        pytest.fail(f"required by NETLAB_REQUIRE_ALL=1: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the real home: HOME, XDG_* and NETLAB_HOME point at tmp."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETLAB_HOME", str(home / "netlab"))
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("NETLAB_DEBUG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return home


def netlab_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "netlab", *args]


class ServerProcess:
    """A real `netlab serve --port 0` in its own process group."""

    def __init__(self, *args: str, host: str = "127.0.0.1", log: Path | None = None) -> None:
        self.log_path = log
        stderr = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            netlab_cmd("serve", "--host", host, "--port", "0", *args),
            stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
        )
        if log:
            stderr.close()  # type: ignore[union-attr]
        line = _readline(self.proc.stdout, WAIT)  # type: ignore[arg-type]
        if not line.startswith(b"listening on "):
            self.kill()
            raise AssertionError(f"serve did not start: {line!r}")
        self.first_line = line.decode().rstrip("\n")
        self.host, _, port = self.first_line[len("listening on "):].rpartition(":")
        self.host = self.host.strip("[]")
        self.port = int(port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGINT, timeout: float = WAIT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(WAIT)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path else ""

    def assert_no_traceback(self) -> None:
        """A thread that died shows only here: the process (and the test) may go on."""
        log = self.log()
        assert "Traceback" not in log, log[log.index("Traceback"):][-3000:]


def _readline(stream, timeout: float) -> bytes:  # type: ignore[no-untyped-def]
    """One line from a pipe, or b'' after `timeout` (never blocks forever)."""
    deadline = time.monotonic() + timeout
    data = b""
    fd = stream.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(log=tmp_path / "serve.log")
    try:
        yield srv
    finally:
        srv.kill()
    srv.assert_no_traceback()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(*args: str, host: str = "127.0.0.1") -> ServerProcess:
        srv = ServerProcess(*args, host=host, log=tmp_path / f"serve{len(started)}.log")
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill()
    for srv in started:
        srv.assert_no_traceback()


class LineClient:
    """A test's chat client: a real socket, the protocol's own framer, bounded waits."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = WAIT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framer = LineFramer(1 << 20)
        self.lines: list[str] = []  # received, not yet consumed by expect()
        self.history: list[str] = []  # everything received
        self.timeout = timeout
        self.closed = False

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode() + b"\n"
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        for item in self.framer.feed(data):
            assert not isinstance(item, LineTooLong)
            self.lines.append(item.decode("utf-8"))
            self.history.append(self.lines[-1])
        return True

    def expect(self, wanted: str | Callable[[str], bool], timeout: float | None = None) -> str:
        """Consume lines until one matches; fail with what arrived instead."""
        match = wanted if callable(wanted) else (lambda line: line == wanted)
        deadline = time.monotonic() + (timeout or self.timeout)
        seen: list[str] = []
        while True:
            while self.lines:
                line = self.lines.pop(0)
                seen.append(line)
                if match(line):
                    return line
            if not self._fill(deadline):
                shown = [line[:80] for line in seen[-5:]]
                raise AssertionError(
                    f"did not get {wanted!r}; last of {len(seen)} lines: {shown!r} "
                    f"(closed={self.closed})")

    def wait_closed(self, timeout: float | None = None) -> list[str]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            if not self._fill(deadline) and not self.closed:
                raise AssertionError("connection still open")
        rest, self.lines = self.lines, []
        return rest

    def join(self, nick: str) -> LineClient:
        self.expect("NICK")
        self.send(nick)
        self.expect(lambda line: line.startswith(f"*** Welcome, {nick}!"))
        self.expect(f"*** {nick} joined")
        return self

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
        import struct

        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.closed = True

    def close(self) -> None:
        self.sock.close()
        self.closed = True


def connect_and_reset(port: int, rounds: int) -> None:
    """Clients that vanish with RST: half before the prompt, half right after it."""
    for i in range(rounds):
        c = LineClient(port)
        if i % 2:
            c.expect("NICK")
        c.reset()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Callable[..., LineClient]]:
    clients: list[LineClient] = []

    def make(nick: str | None = None) -> LineClient:
        client = LineClient(server.port)
        clients.append(client)
        return client.join(nick) if nick else client

    yield make
    for client in clients:
        client.close()
