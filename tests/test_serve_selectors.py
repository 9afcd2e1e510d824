"""`netlab serve --engine selectors`: the same protocol, limits and manners, one thread."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import WAIT, LineClient, ServerProcess, connect_and_reset
from tests.test_fault_suite import run_chaos

Start = Callable[..., ServerProcess]
ENGINE = ("--engine", "selectors")


@pytest.fixture
def loop_server(start_server: Start) -> ServerProcess:
    return start_server(*ENGINE)


def test_clients_chat_in_one_order(loop_server: ServerProcess) -> None:
    alice = LineClient(loop_server.port).join("alice")
    bob = LineClient(loop_server.port).join("bob")
    alice.expect("*** bob joined")
    for i in range(10):
        (alice, bob)[i % 2].send(f"m{i}")
    seen = [[c.expect(lambda line: ": m" in line) for _ in range(10)] for c in (alice, bob)]
    assert seen[0] == seen[1]
    bob.send("/msg alice psst")
    alice.expect("[pm] bob -> alice: psst")
    bob.send("/quit")
    assert bob.wait_closed()[-1] == "*** bob left (quit)"
    alice.expect("*** bob left (quit)")


def test_bad_input_leaves_the_others_chatting(loop_server: ServerProcess) -> None:
    alice = LineClient(loop_server.port).join("alice")
    bob = LineClient(loop_server.port).join("bob")
    alice.send(b"z" * 5_000_000 + b"\n")
    assert alice.expect(lambda line: line.startswith("! ")) == "! line too long (max 4096 bytes)"
    alice.send(b"\xff\x1b[2J\n")
    assert bob.expect(lambda line: line.startswith("alice:")) == "alice: \ufffd\\x1b[2J"
    carol = LineClient(loop_server.port)
    carol.send(b"half a li")
    carol.reset()
    bob.send("still here")
    alice.expect("bob: still here")


def test_a_client_that_never_reads_is_dropped(start_server: Start) -> None:
    srv = start_server(*ENGINE, "--max-queue", "256k")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.settimeout(WAIT)
    stalled.connect(("127.0.0.1", srv.port))
    stalled.sendall(b"sloth\n")
    alice = LineClient(srv.port).join("alice")
    bob = LineClient(srv.port).join("bob")
    line = "x" * 4000
    for i in range(2000):
        alice.send(f"{i} {line}")
        if i % 100 == 99:
            for reader in (alice, bob):
                reader.expect(lambda got, i=i: got.startswith(f"alice: {i} "))
    assert "*** sloth left (too slow)" in bob.history
    stalled.close()


def test_handshake_timeout_and_server_full(start_server: Start) -> None:
    srv = start_server(*ENGINE, "--handshake-timeout", "0.5", "--max-clients", "2")
    silent = LineClient(srv.port)
    silent.expect("NICK")
    alice = LineClient(srv.port).join("alice")
    assert LineClient(srv.port).wait_closed() == ["! server full (max 2 clients)"]
    assert silent.wait_closed() == ["! nickname timeout"]
    alice.send("ok")
    alice.expect("alice: ok")


def test_churn_leaves_no_fds_and_ctrl_c_says_goodbye(loop_server: ServerProcess) -> None:
    proc = psutil.Process(loop_server.pid)
    base_fds, base_threads = proc.num_fds(), proc.num_threads()
    connect_and_reset(loop_server.port, 1000)
    client = LineClient(loop_server.port).join("last")
    deadline = time.monotonic() + WAIT
    while proc.num_fds() > base_fds + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.num_fds() <= base_fds + 1
    assert proc.num_threads() == base_threads  # one thread serves them all
    assert loop_server.stop(signal.SIGINT) == 0
    assert client.wait_closed() == ["*** server shutdown"]


def test_random_abuse(start_server: Start) -> None:
    def with_engine(*args: str, **kwargs: str) -> ServerProcess:
        return start_server(*ENGINE, *args, **kwargs)

    run_chaos(with_engine, seed=99, rounds=15)
